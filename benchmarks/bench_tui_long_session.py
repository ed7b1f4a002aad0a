"""Long-session benchmark: replay N turns with tool calls through the real app, then stream chunks at 2,000/s.

    python benchmarks/bench_tui_long_session.py [--turns 2000]

Events are fed through a stand-in agent (the app's bridge worker and handlers are the real ones). Reports RSS,
mounted widget count, keypress-to-paint latency (p50/p95, sampled through the run) and streaming throughput with
the longest event-loop stall. Budgets (design §5): RSS < 400 MB, p95 < 50 ms, bounded widgets, 2,000 chunks/s
with no frame > 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class ReplayAgent:
    """Feeds events to the app as fast as it consumes them."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.busy = False

    async def start(self) -> None:
        return None

    def submit(self, op: Any) -> None:
        return None

    async def events(self) -> Any:
        while True:
            event = await self.queue.get()
            yield event
            if event.type == "shutdown":
                return

    async def shutdown(self, timeout: float = 10.0) -> None:
        from ml_intern.core.events import Shutdown

        self.queue.put_nowait(Shutdown())


def turn_events(n: int) -> list[Any]:
    from ml_intern.core import events as ev

    text = (
        f"Turn {n}: I looked at the dataset and the **loss curve**. Next I'll run a short check.\n\n"
        "```python\nfrom trl import SFTTrainer\ntrainer.train()\n```\n\nThat should take a minute."
    )
    chunks = [text[i : i + 12] for i in range(0, len(text), 12)]
    call_id = f"call_{n}"
    out: list[Any] = [ev.Processing()]
    out += [ev.AssistantChunk(content=c) for c in chunks]
    out += [
        ev.AssistantStreamEnd(),
        ev.ToolCall(tool="bash", arguments={"command": f"python train.py --step {n}"}, tool_call_id=call_id),
        ev.ToolStateChange(tool_call_id=call_id, tool="bash", state="running"),
        ev.ToolLog(tool="bash", log=f"step {n} loss 0.{n % 97:02d}", tool_call_id=call_id),
        ev.ToolOutput(tool="bash", tool_call_id=call_id, output=f"step {n} loss 0.{n % 97:02d}\n" * 20,
                      duration_s=1.5),
        ev.ToolStateChange(tool_call_id=call_id, tool="bash", state="done"),
        ev.Usage(model="bench/model", context_tokens=1000 + n, context_window=200_000, session_tokens=n * 1500,
                 session_cost_usd=n * 0.01),
    ]
    out += [ev.AssistantChunk(content=c) for c in ("Done with ", f"turn {n}.")]
    out += [ev.AssistantStreamEnd(), ev.TurnComplete(history_size=n * 4)]
    return out


async def drain(pilot: Any, agent: ReplayAgent) -> None:
    """Wait until every fed event has been handled (no wall-clock idle heuristics)."""
    screen = pilot.app.main_screen
    while not agent.queue.empty() or not screen._message_queue.empty():
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)


async def keypress_to_paint(app: Any, paints: list[tuple[float, str]], key: str, char: str | None) -> float:
    """Milliseconds from posting a key to the first frame rendered with its effect on the prompt."""
    from textual import events

    screen = app.main_screen
    before = screen.prompt.text
    t0 = time.perf_counter()
    app.post_message(events.Key(key, char))
    while True:
        await asyncio.sleep(0.0005)
        for stamp, text in reversed(paints):
            if stamp < t0:
                break
            if text != before:
                return (stamp - t0) * 1000
        if time.perf_counter() - t0 > 2:
            return 2000.0


async def run(turns: int, sample_every: int) -> dict[str, Any]:
    from ml_intern.config import Settings
    from ml_intern.core import events as ev
    from ml_intern.tui.app import MLInternApp
    from ml_intern.tui.widgets.conversation import UserMessage

    agent = ReplayAgent()
    agent.queue.put_nowait(ev.Ready(model="bench/model"))
    app = MLInternApp(Settings(model_name="bench/model", save_sessions=False), agent_factory=lambda: agent,
                      history_file=None, save_settings=False)
    latencies: list[float] = []
    samples: list[tuple[int, float, int]] = []
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.main_screen
        assert screen is not None
        await drain(pilot, agent)
        screen.prompt.cursor_blink = False
        paints: list[tuple[float, str]] = []
        refresh = screen._compositor_refresh

        def record_paint() -> None:
            refresh()
            paints.append((time.perf_counter(), screen.prompt.text))
            del paints[:-50]

        screen._compositor_refresh = record_paint  # type: ignore[method-assign]
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        for n in range(1, turns + 1):
            await screen.conversation.add_block(UserMessage(f"please do step {n}"))
            for event in turn_events(n):
                agent.queue.put_nowait(event)
            await drain(pilot, agent)
            if n % sample_every == 0 or n == turns:
                screen.prompt.focus()
                await drain(pilot, agent)
                for key, char in (("a", "a"), ("b", "b"), ("backspace", None), ("backspace", None)):
                    latencies.append(await keypress_to_paint(app, paints, key, char))
                widgets = sum(1 for _ in screen.walk_children(with_self=False))
                samples.append((n, rss_mb(), widgets))
        replay_s = time.perf_counter() - started

        # Streaming: 2,000 chunks offered at 2,000/s into one message; watch the longest event-loop stall.
        await drain(pilot, agent)
        stalls: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                stalls.append((now - last) * 1000)
                last = now

        tick = asyncio.create_task(ticker())
        agent.queue.put_nowait(ev.Processing())
        # Model-like text: ~3-word chunks, a paragraph break every 60 chunks, a code block every 300.
        words = "The validation loss keeps falling with the *cosine* schedule and warmup. ".split(" ")
        pieces: list[str] = []
        for i in range(2000):
            piece = words[i % len(words)] + " "
            if i % 300 == 299:
                piece += "\n\n```python\ntrainer.train()\n```\n\n"
            elif i % 60 == 59:
                piece += "\n\n"
            pieces.append(piece)
        t0 = time.perf_counter()
        for batch in range(100):
            for i in range(20):
                agent.queue.put_nowait(ev.AssistantChunk(content=pieces[batch * 20 + i]))
            await asyncio.sleep(max(0.0, t0 + (batch + 1) * 0.01 - time.perf_counter()))
        agent.queue.put_nowait(ev.AssistantStreamEnd())
        await drain(pilot, agent)
        stream_s = time.perf_counter() - t0
        stop.set()
        await tick
    return {
        "turns": turns,
        "replay_s": replay_s,
        "latencies": latencies,
        "samples": samples,
        "stream_s": stream_s,
        "max_stall_ms": max(stalls) if stalls else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="TUI long-session benchmark")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--sample-every", type=int, default=100)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ml-intern-bench-"))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        os.environ[var] = str(home / var.lower())
    result = asyncio.run(run(args.turns, args.sample_every))
    lat = sorted(result["latencies"])
    p50 = statistics.median(lat)
    p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
    print(f"turns replayed          {result['turns']} in {result['replay_s']:.1f}s "
          f"({result['replay_s'] / result['turns'] * 1000:.1f} ms/turn)")
    print("turn     RSS MB   widgets")
    for n, rss, widgets in result["samples"]:
        print(f"{n:>5}  {rss:>8.1f}  {widgets:>8}")
    print(f"keypress-to-paint       p50 {p50:.1f} ms   p95 {p95:.1f} ms   (n={len(lat)})   budget p95 < 50 ms")
    print(f"peak RSS                {max(s[1] for s in result['samples']):.1f} MB   budget < 400 MB")
    widgets = [s[2] for s in result["samples"]]
    print(f"mounted widgets         first {widgets[0]}  last {widgets[-1]}  max {max(widgets)}   (bounded)")
    rate = 2000 / result["stream_s"]
    print(f"streaming               2000 chunks rendered in {result['stream_s']:.2f}s ({rate:.0f} chunks/s), "
          f"longest stall {result['max_stall_ms']:.0f} ms   budget 2000/s, no frame > 100 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
