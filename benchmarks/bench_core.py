"""Core benchmarks against the design's budgets (run on demand: `python benchmarks/bench_core.py`).

- `ml-intern --help` wall time (budget 0.3 s)
- headless one-answer task vs the scripted loopback model (budget: litellm import + 0.5 s)
- agent overhead per tool iteration over a 200-step scripted run, LLM and tool time excluded (budget 5 ms)
- tokens of the system prompt + built-in tool specs (budget 6,000)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")


def bench_help(runs: int = 10) -> dict[str, float]:
    """Time `ml-intern --help` in fresh processes."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ml_intern", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return {"median_s": statistics.median(times), "max_s": max(times)}


def bench_litellm_import(runs: int = 3) -> float:
    """Time `import litellm` (with our offline settings) in fresh processes."""
    code = "import time; t=time.perf_counter(); from ml_intern.core.llm import load_litellm; load_litellm(); print(time.perf_counter()-t)"
    values = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        values.append(float(out.strip()))
    return statistics.median(values)


def bench_headless(runs: int = 3) -> dict[str, float]:
    """Time a one-answer headless task end to end (process start to exit) against the scripted server."""
    from tests.harness.scripted_llm import ScriptedLLMServer, echo_responder

    server = ScriptedLLMServer(responder=echo_responder).start()
    times = []
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "VLLM_BASE_URL": server.base_url, "XDG_DATA_HOME": home, "XDG_STATE_HOME": home,
                   "XDG_CONFIG_HOME": home}
            for _ in range(runs):
                started = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, "-m", "ml_intern", "--model", "vllm/bench", "what is 2+2?"],
                    capture_output=True, text=True, env=env, cwd=home,
                )
                times.append(time.perf_counter() - started)
                assert result.returncode == 0, result.stderr
    finally:
        server.stop()
    return {"median_s": statistics.median(times)}


class _InstantLLM:
    """An in-process model that answers instantly: tool calls for N steps, then text."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.calls = 0
        self.time_in_llm = 0.0

    async def complete(self, request, on_chunk=None):  # noqa: ANN001
        from ml_intern.core.llm_types import LLMResponse, LLMToolCall, TokenUsage

        started = time.perf_counter()
        self.calls += 1
        if self.calls <= self.steps:
            response = LLMResponse(
                content="",
                tool_calls=[LLMToolCall(id=f"c{self.calls}", name="noop", arguments=json.dumps({"i": self.calls}))],
                finish_reason="tool_calls",
                usage=TokenUsage(100, 10, 110),
            )
        else:
            if on_chunk:
                on_chunk("done")
            response = LLMResponse(content="done", finish_reason="stop", usage=TokenUsage(100, 1, 101))
        self.time_in_llm += time.perf_counter() - started
        return response


async def _overhead(steps: int) -> dict[str, float]:
    from ml_intern.config import Settings
    from ml_intern.core import operations as ops
    from ml_intern.core.agent import Agent
    from ml_intern.core.approval import PolicyApprover
    from ml_intern.core.tools import ToolRouter, ToolSpec

    tool_time = 0.0

    async def noop(arguments, ctx):  # noqa: ANN001
        nonlocal tool_time
        started = time.perf_counter()
        result = f"ok {arguments['i']}"
        tool_time += time.perf_counter() - started
        return result

    with tempfile.TemporaryDirectory() as home:
        os.environ.update({"XDG_DATA_HOME": home, "XDG_STATE_HOME": home, "XDG_CONFIG_HOME": home})
        llm = _InstantLLM(steps)
        router = ToolRouter([ToolSpec("noop", "No-op.", {"type": "object", "properties": {"i": {"type": "integer"}}}, noop)])
        settings = Settings(model_name="vllm/bench", approval_mode="yolo", context_window=1_000_000, max_iterations=-1)
        agent = Agent(settings, tools=router, llm=llm, workdir=home, approver=PolicyApprover(), headless=True)
        await agent.start()
        drained = 0

        async def drain() -> None:
            nonlocal drained
            async for _ in agent.events():
                drained += 1

        pump = asyncio.create_task(drain())
        started = time.perf_counter()
        agent.submit(ops.UserInput(text="go"))
        await agent.wait_idle()
        total = time.perf_counter() - started
        await agent.shutdown()
        await pump
    overhead = total - llm.time_in_llm - tool_time
    return {"steps": steps, "total_s": total, "per_iteration_ms": overhead / (steps + 1) * 1000, "events": drained}


def bench_overhead(steps: int = 200) -> dict[str, float]:
    """Agent overhead per tool iteration with an instant model and a no-op tool."""
    return asyncio.run(_overhead(steps))


def bench_prompt_tokens() -> dict[str, int]:
    """Count tokens of the system prompt plus every built-in tool spec."""
    from ml_intern.config import Settings
    from ml_intern.core.context import count_text_tokens, message_tokens, tools_tokens
    from ml_intern.core.prompts import render_system_prompt
    from ml_intern.tools import build_router

    router = build_router(Settings(model_name="vllm/bench"))
    prompt = render_system_prompt(workdir="/home/user/project", model="vllm/bench", tool_names=router.names())
    schemas = router.llm_schemas()
    per_tool = {s["function"]["name"]: count_text_tokens(json.dumps(s)) for s in schemas}
    system = message_tokens({"role": "system", "content": prompt})
    return {"system_prompt": system, "tool_specs": tools_tokens(schemas), "total": system + tools_tokens(schemas),
            "tools": len(schemas), **{f"tool:{k}": v for k, v in sorted(per_tool.items(), key=lambda kv: -kv[1])}}


def main() -> None:
    """Run every benchmark and print results next to the budgets."""
    help_result = bench_help()
    print(f"ml-intern --help            median {help_result['median_s']*1000:.0f} ms, max {help_result['max_s']*1000:.0f} ms  (budget 300 ms)")
    import_s = bench_litellm_import()
    headless = bench_headless()
    print(f"litellm import              {import_s:.2f} s")
    print(f"headless one-answer task    {headless['median_s']:.2f} s end to end = litellm import + "
          f"{headless['median_s'] - import_s:.2f} s  (budget: import + 0.5 s, includes Python start-up)")
    overhead = bench_overhead()
    print(f"agent overhead / iteration  {overhead['per_iteration_ms']:.2f} ms over {overhead['steps']} steps "
          f"({overhead['events']} events)  (budget 5 ms)")
    tokens = bench_prompt_tokens()
    print(f"system prompt + tool specs  {tokens['total']} tokens ({tokens['system_prompt']} prompt + "
          f"{tokens['tool_specs']} for {tokens['tools']} tools)  (budget 6,000)")
    for key, value in tokens.items():
        if key.startswith("tool:"):
            print(f"    {key[5:]:<22} {value}")


if __name__ == "__main__":
    main()
