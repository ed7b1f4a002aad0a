"""Compaction through the real agent and litellm against the scripted model: long turns, tiny windows, failures."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from ml_intern.core.agent import Agent
from ml_intern.core.approval import PolicyApprover
from ml_intern.core.context import (
    SUMMARY_PROMPT,
    History,
    compact_history,
    count_text_tokens,
    message_tokens,
    tools_tokens,
)
from ml_intern.core.tools import ToolSpec
from ml_intern.tools import build_router
from tests.conftest import make_settings
from tests.harness.scripted_llm import (
    ScriptedLLMServer,
    Step,
    call,
    context_length_exceeded,
    text,
    tool_calls,
)
from tests.test_agent_e2e import Run

WINDOW = 6_000


def _log_text(n: int, lines: int = 45) -> str:
    return "\n".join(
        f"step {n}.{i}: loss={1 / (i + n + 1):.5f} grad_norm={i * 0.37:.3f} lr=3e-4 tokens/s=1834"
        for i in range(lines)
    )


async def _fetch_log(arguments: dict[str, Any], ctx: Any) -> str:
    return _log_text(int(arguments.get("n", 0)))


FETCH_LOG = ToolSpec(
    "fetch_log",
    "Return the training log of run n.",
    {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    _fetch_log,
)


def is_summary_request(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return (
        bool(messages)
        and messages[0].get("role") == "system"
        and messages[0].get("content") == SUMMARY_PROMPT
    )


def request_tokens(body: dict[str, Any]) -> int:
    """Our own count of what a request costs (the same counter the agent uses)."""
    return 3 + sum(message_tokens(m) for m in body["messages"]) + tools_tokens(body.get("tools") or [])


def assert_pairs_intact(messages: list[dict[str, Any]]) -> None:
    """Every tool result follows the assistant call that asked for it; every call has a result."""
    open_calls: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            assert not open_calls, f"calls without results: {open_calls}"
            open_calls = {c["id"] for c in message.get("tool_calls") or []}
        elif message["role"] == "tool":
            assert message["tool_call_id"] in open_calls, f"orphan tool result {message['tool_call_id']}"
            open_calls.discard(message["tool_call_id"])
        else:
            assert not open_calls, f"calls without results before a {message['role']} message: {open_calls}"


def long_turn_agent(workdir: Path, **settings: Any) -> Agent:
    config = make_settings(**{"context_window": WINDOW, **settings})
    router = build_router(config)
    router.register(FETCH_LOG)
    return Agent(config, tools=router, workdir=workdir, headless=True, approver=PolicyApprover())


def long_turn_responder(calls: int, summaries: list[dict[str, Any]]) -> Any:
    counter = itertools.count(1)

    def respond(body: dict[str, Any]) -> Step:
        if is_summary_request(body):
            summaries.append(body)
            return text(
                "- Fetched training logs; losses fall steadily; no errors so far.\n- Next: fetch the rest."
            )
        n = next(counter)
        if n <= calls:
            return tool_calls(call("fetch_log", {"n": n}))
        return text("final answer: the loss went down in every run")

    return respond


async def test_a_single_long_turn_in_a_tiny_window_is_compacted_and_finishes(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    summaries: list[dict[str, Any]] = []
    llm_server.responder = long_turn_responder(14, summaries)
    async with Run(long_turn_agent(workdir)) as run:
        await run.say("compare the training logs of runs 1 to 14", timeout=120)
    assert not run.of(ev.SessionTerminated) and not run.of(ev.Error)
    assert run.of(ev.TurnComplete)[-1].final_response == "final answer: the loss went down in every run"
    compactions = run.of(ev.Compacted)
    assert len(compactions) >= 2 and all(c.new_tokens < c.old_tokens for c in compactions)
    assert summaries, "the middle of the turn was summarised, not only truncated"
    main = [r for r in llm_server.chat_requests if not is_summary_request(r.body)]
    assert len(main) == 15
    limit = int(WINDOW * 0.9)
    for request in main:
        assert request_tokens(request.body) <= limit
        assert request.messages[1] == {"role": "user", "content": "compare the training logs of runs 1 to 14"}
        assert_pairs_intact(request.messages[1:])
    # The latest tool result always reaches the model, and the summary stands in for the middle.
    last = main[-1].messages
    assert last[-1]["role"] == "tool" and "step 14.0" in last[-1]["content"]
    assert any("earlier work in this session was compacted" in str(m.get("content")) for m in last)
    # Summary requests fit the window too and carry the task.
    for body in summaries:
        assert request_tokens(body) + 600 <= WINDOW
        assert "compare the training logs" in body["messages"][1]["content"]
    # The status bar hears about the new size after each compaction.
    after = [run.events[run.events.index(c) + 1] for c in compactions]
    assert all(isinstance(e, ev.Usage) and e.context_window == WINDOW for e in after)


async def test_a_summary_request_that_overflows_falls_back_to_truncation_once(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    counter = itertools.count(1)
    summary_requests = []

    def respond(body: dict[str, Any]) -> Step:
        if is_summary_request(body):
            summary_requests.append(body)
            return context_length_exceeded()
        n = next(counter)
        return tool_calls(call("fetch_log", {"n": n})) if n <= 4 else text("done")

    llm_server.responder = respond
    async with Run(long_turn_agent(workdir)) as run:
        await run.say("fetch four logs", timeout=60)
    assert run.of(ev.TurnComplete)[-1].final_response == "done"
    assert not run.of(ev.SessionTerminated)
    logs = [e.log for e in run.of(ev.ToolLog) if e.tool == "system"]
    assert any("Summary failed" in log for log in logs)
    compactions = run.of(ev.Compacted)
    assert compactions and all("cut" in c.message for c in compactions)
    # One summary attempt per compaction, never a retry loop.
    assert len(summary_requests) == len(compactions)


async def test_a_provider_overflow_compacts_once_then_gives_up(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    def respond(body: dict[str, Any]) -> Step:
        if is_summary_request(body):
            return text("- summary")
        return context_length_exceeded()

    llm_server.responder = respond
    llm_server.add(tool_calls(call("fetch_log", {"n": 1})), tool_calls(call("fetch_log", {"n": 2})))
    async with Run(long_turn_agent(workdir, context_window=64_000)) as run:
        await run.say("go", timeout=60)
    errors = run.of(ev.Error)
    assert len(errors) == 1 and errors[0].kind == "context_overflow"
    assert "already ran" in errors[0].error
    main = [r for r in llm_server.chat_requests if not is_summary_request(r.body)]
    assert len(main) == 4  # two tool steps, the refused request, one retry after compacting


async def test_a_task_larger_than_the_window_ends_the_session_with_a_reason(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    huge = "please read this carefully: " + " ".join(f"word{i}" for i in range(5000))
    async with Run(long_turn_agent(workdir)) as run:
        await run.say(huge)
        await run.say("and now?")
    terminated = run.of(ev.SessionTerminated)
    assert len(terminated) == 1 and terminated[0].reason == "compaction_failed"
    assert "context window" in terminated[0].message
    assert run.agent.last_turn_outcome == "terminated" or run.of(ev.Error)[-1].kind == "terminated"
    assert not llm_server.chat_requests  # nothing was sent that could not fit


async def test_manual_compact_on_a_tiny_conversation_says_why_nothing_was_done(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    llm_server.add(text("hello!"))
    async with Run(long_turn_agent(workdir)) as run:
        run.agent.submit(ops.Compact())
        await run.agent.wait_idle()
        await run.say("hi")
        run.agent.submit(ops.Compact())
        await run.agent.wait_idle()
    skipped = run.of(ev.CompactSkipped)
    assert len(skipped) == 2
    assert "too short" in skipped[0].reason and "too short" in skipped[1].reason
    assert not run.of(ev.Compacted)


async def test_manual_compact_summarises_older_turns_and_keeps_the_recent_ones(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    summaries: list[dict[str, Any]] = []

    def respond(body: dict[str, Any]) -> Step:
        if is_summary_request(body):
            summaries.append(body)
            return text("- ran fetch_log for runs 1-6")
        return text("(unused)")

    llm_server.responder = respond
    for n in range(1, 7):
        llm_server.add(tool_calls(call("fetch_log", {"n": n})), text(f"run {n} looks fine"))
    async with Run(long_turn_agent(workdir, context_window=64_000)) as run:
        for n in range(1, 7):
            await run.say(f"check run {n}")
        before = run.agent.history.tokens(run.agent.tool_schemas())
        run.agent.submit(ops.Compact())
        await run.agent.wait_idle()
        history = list(run.agent.history.messages)
        after = run.agent.history.tokens(run.agent.tool_schemas())
    compacted = run.of(ev.Compacted)
    assert (
        len(compacted) == 1
        and compacted[0].old_tokens == before
        and compacted[0].new_tokens == after < before
    )
    assert len(summaries) == 1
    assert history[1]["content"] == "check run 1"
    assert "earlier work in this session was compacted" in history[2]["content"]
    assert history[-1]["content"] == "run 6 looks fine"
    assert_pairs_intact(history[1:])
    assert isinstance(run.events[run.events.index(compacted[0]) + 1], ev.Usage)


# ---------------------------------------------------------------- compact_history on its own


def _random_history(rng: random.Random) -> History:
    history = History("system prompt " * 50)
    call_ids = itertools.count()
    for _turn in range(rng.randint(1, 4)):
        history.add_user("task " + "x " * rng.randint(5, 400))
        for _step in range(rng.randint(0, 8)):
            if rng.random() < 0.15:
                history.add_injected("[ml-intern] guidance")
            ids = [f"c{next(call_ids)}" for _ in range(rng.randint(1, 3))]
            history.add_assistant(
                "thinking " * rng.randint(0, 30),
                [{"id": i, "type": "function", "function": {"name": "t", "arguments": "{}"}} for i in ids],
            )
            for i in ids:
                history.add_tool_result(i, "t", "output line\n" * rng.randint(1, 600))
        if rng.random() < 0.7:
            history.add_assistant("answer " * rng.randint(1, 50))
    return history


@pytest.mark.parametrize("seed", range(40))
async def test_compaction_keeps_pairs_and_the_task_and_fits(seed: int) -> None:
    rng = random.Random(seed)
    history = _random_history(rng)
    task = history.messages[1]

    async def summarise(messages: list[dict[str, Any]], max_tokens: int) -> str:
        assert count_text_tokens(messages[1]["content"]) < 20_000 * 0.75
        return "- summary of the middle"

    before = history.tokens([])
    limit = max(int(before * rng.uniform(0.3, 0.9)), 1200)
    result = await compact_history(
        history, [], limit_tokens=limit, context_window=20_000, summarise=summarise
    )
    assert history.tokens([]) <= limit and result.new_tokens <= limit
    assert history.messages[1] is task
    assert len(history.messages) == len(history.meta)
    assert_pairs_intact(history.messages[1:])
