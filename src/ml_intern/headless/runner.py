"""Headless mode: run one task with the same Agent, print as it goes, exit with a meaningful code."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from ml_intern.config import Settings
from ml_intern.core import operations as ops
from ml_intern.core.agent import Agent
from ml_intern.core.approval import PolicyApprover
from ml_intern.headless.render import JsonRenderer, TextRenderer

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ITERATION_CAP = 3
EXIT_INTERRUPTED = 130

_OUTCOME_CODES = {
    "done": EXIT_OK,
    "error": EXIT_ERROR,
    "terminated": EXIT_ERROR,
    "iteration_limit": EXIT_ITERATION_CAP,
    "interrupted": EXIT_INTERRUPTED,
}


async def run_headless(
    settings: Settings,
    prompt: str,
    *,
    json_output: bool = False,
    resume: str | None = None,
    agent: Agent | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one prompt to completion and return the process exit code."""
    renderer = JsonRenderer(out) if json_output else TextRenderer(out, err)
    if agent is None:
        agent = Agent(settings, approver=PolicyApprover(approve=False), headless=True)
    await agent.start()

    async def pump() -> None:
        async for event in agent.events():
            renderer.render(event)

    pump_task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            agent.submit(ops.Interrupt())
        else:  # a second Ctrl+C means "now"
            sys.stderr.write("\ninterrupted\n")
            raise SystemExit(EXIT_INTERRUPTED)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        installed = True
    except (NotImplementedError, RuntimeError):
        installed = False
    try:
        if resume:
            agent.submit(ops.Resume(session_id=resume))
            await agent.wait_idle()
        agent.submit(ops.UserInput(text=prompt))
        await agent.wait_idle()
        code = _OUTCOME_CODES.get(agent.last_turn_outcome or "error", EXIT_ERROR)
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)
        await agent.shutdown()
        try:
            await asyncio.wait_for(pump_task, 5)
        except TimeoutError:
            pump_task.cancel()
    if agent.store.last_error and not json_output:
        (err or sys.stderr).write(f"warning: {agent.store.last_error}\n")
    return code
