"""Long-session benchmark: replay N turns with tool calls through the real app, then stream into the long transcript.

    python benchmarks/bench_tui_long_session.py [--turns 2000] [--quiet-every 25] [--profile stream]

Events are fed through a stand-in agent (the app's bridge worker and handlers are the real ones), turn after turn
with no pause except 1.5 s every 25 turns (a model thinking, a user reading: real sessions pause far more often). Paints are
recorded where the screen hands a frame to the driver, so every latency ends at the frame that shows the change.

- keypress-to-paint: a key posted to the app until the first frame whose prompt shows it; sampled right after
  turns end (the footer, timeline and layout still settling) and while a reply streams (type-ahead).
- streaming: 5,000 chunks offered at 2,000/s into one reply, then 2,000 offered at once; chunks/s is the chunks
  divided by the time from the first chunk to the frame that shows the last one. "Longest frame" is the longest
  screen update (layout plus render); "longest stall" is the longest event-loop block; "longest paint gap" is
  the longest time between two frames while text arrives (the user sees nothing move for that long).

Full GC passes are reported apart: the TUI runs them at quiet moments; Python's own land anywhere.

Budgets (design §5): RSS < 400 MB, keypress p95 < 50 ms, bounded widgets, 2,000 chunks/s with no frame > 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
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


# A real session pauses: the model thinks for seconds, the user reads. The replay pauses this long every
# `--quiet-every` turns so that the TUI's quiet-moment garbage collection gets its chances.
QUIET_PAUSE_S = 1.5


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


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """Return p50, p95 and max of `values`."""
    ordered = sorted(values)
    if not ordered:
        return 0.0, 0.0, 0.0
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], ordered[-1]


def stream_pieces(count: int) -> list[str]:
    """Model-like text: ~1-word chunks, a paragraph break every 60 chunks, a code block every 300."""
    words = "The validation loss keeps falling with the *cosine* schedule and warmup. ".split(" ")
    pieces: list[str] = []
    for i in range(count):
        piece = words[i % len(words)] + " "
        if i % 300 == 299:
            piece += "\n\n```python\ntrainer.train()\n```\n\n"
        elif i % 60 == 59:
            piece += "\n\n"
        pieces.append(piece)
    return pieces


async def next_paint_after(paints: list[tuple[float, str]], after: float, timeout: float = 2.0) -> float:
    """Wait for the first frame painted after `after`; return its time."""
    while True:
        for stamp, _ in reversed(paints):
            if stamp < after:
                break
            return stamp
        if time.perf_counter() - after > timeout:
            return time.perf_counter()
        await asyncio.sleep(0.0005)


async def stream_chunks(app: Any, agent: ReplayAgent, pilot: Any, paints: list[tuple[float, str]],
                        frames: list[tuple[float, float]], *, rate: int | None, type_keys: bool,
                        count: int = 2000) -> dict[str, Any]:
    """Stream `count` chunks into one reply (`rate` per second, or all at once) and measure what the user sees."""
    from ml_intern.core import events as ev

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

    async def offer() -> None:
        pieces = stream_pieces(count)
        if rate is None:
            for piece in pieces:
                agent.queue.put_nowait(ev.AssistantChunk(content=piece))
        else:
            per_tick = max(1, rate // 100)
            for start in range(0, count, per_tick):
                for piece in pieces[start : start + per_tick]:
                    agent.queue.put_nowait(ev.AssistantChunk(content=piece))
                await asyncio.sleep(max(0.0, t0 + (start + per_tick) / rate - time.perf_counter()))
        agent.queue.put_nowait(ev.AssistantStreamEnd())

    # The frame that shows the last chunk is the first one after the reply's last append.
    from textual.widgets import Markdown

    from ml_intern.tui.widgets.conversation import AssistantMessage

    appended_at = [0.0]

    async def stamped_append(message: Markdown, markdown: str) -> None:
        await Markdown.append(message, markdown)
        appended_at[0] = time.perf_counter()

    AssistantMessage.append = stamped_append  # type: ignore[assignment,method-assign]
    screen = app.main_screen
    screen.prompt.focus()
    await drain(pilot, agent)
    tick = asyncio.create_task(ticker())
    agent.queue.put_nowait(ev.Processing())
    await drain(pilot, agent)
    first_frame = len(frames)
    t0 = time.perf_counter()
    feeder = asyncio.create_task(offer())
    latencies: list[float] = []
    if type_keys:
        keys = [("x", "x"), ("backspace", None)]
        while not feeder.done():
            key, char = keys[len(latencies) % 2]
            latencies.append(await keypress_to_paint(app, paints, key, char))
            await asyncio.sleep(0.03)  # a fast typist: a key every ~60 ms
    await feeder
    offered_s = time.perf_counter() - t0
    await drain(pilot, agent)
    shown = await next_paint_after(paints, appended_at[0])
    stop.set()
    await tick
    del AssistantMessage.append
    if screen.prompt.text:
        screen.prompt.clear()
    agent.queue.put_nowait(ev.TurnComplete(history_size=0))
    await drain(pilot, agent)
    stamps = [stamp for stamp, _ in paints if t0 <= stamp <= shown]
    gaps = [(b - a) * 1000 for a, b in zip([t0, *stamps], stamps, strict=False)]
    work = [duration for _, duration in frames[first_frame:]]
    return {
        "rate": rate,
        "offered_s": offered_s,
        "shown_s": shown - t0,
        "chunks_per_s": count / (shown - t0),
        "lag_ms": (shown - t0 - offered_s) * 1000,
        "frames": len(work),
        "longest_frame_ms": max(work) * 1000 if work else 0.0,
        "longest_stall_ms": max(stalls) if stalls else 0.0,
        "longest_gap_ms": max(gaps) if gaps else 0.0,
        "latencies": latencies,
    }


async def run(turns: int, sample_every: int, quiet_every: int, profile: str | None = None) -> dict[str, Any]:
    from ml_intern.config import Settings
    from ml_intern.core import events as ev
    from ml_intern.tui.app import MLInternApp
    from ml_intern.tui.quiet_gc import quiet_gc
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
        frames: list[tuple[float, float]] = []
        refresh = screen._compositor_refresh

        def record_paint() -> None:
            refresh()
            paints.append((time.perf_counter(), screen.prompt.text))
            if len(paints) > 4000:
                del paints[:-2000]

        screen._compositor_refresh = record_paint  # type: ignore[method-assign]
        # A frame's work: the screen's update timer callback (layout, then render), timed end to end.
        timer = screen._update_timer
        update = timer._callback

        def timed_update() -> None:
            started_at = time.perf_counter()
            update()  # type: ignore[misc]
            frames.append((started_at, time.perf_counter() - started_at))
            if len(frames) > 20000:
                del frames[:-10000]

        timer._callback = timed_update
        gc.collect()
        gc.freeze()
        # Full GC passes: Python's own (they land wherever they land) and the quiet ones paced by the TUI.
        full_gc_ms: list[tuple[bool, float]] = []
        gc_started = [0.0]
        def time_full_gc(phase: str, info: dict[str, int]) -> None:
            if info["generation"] == 2:
                if phase == "start":
                    gc_started[0] = time.perf_counter()
                else:
                    full_gc_ms.append((quiet_gc.collecting, (time.perf_counter() - gc_started[0]) * 1000))

        gc.callbacks.append(time_full_gc)
        profiler = cProfile.Profile() if profile else None
        if profiler is not None and profile == "replay":
            profiler.enable()
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
            if n % quiet_every == 0:
                await asyncio.sleep(QUIET_PAUSE_S)
        replay_s = time.perf_counter() - started

        # Streaming into the long transcript: sustained at 2,000 chunks/s while the user types, then a burst.
        if profiler is not None:
            profiler.disable() if profile == "replay" else profiler.enable()
        sustained = await stream_chunks(app, agent, pilot, paints, frames, rate=2000, type_keys=True, count=5000)
        burst = await stream_chunks(app, agent, pilot, paints, frames, rate=None, type_keys=False)
        gc.callbacks.remove(time_full_gc)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return {
        "turns": turns,
        "replay_s": replay_s,
        "latencies": latencies,
        "samples": samples,
        "sustained": sustained,
        "burst": burst,
        "full_gc_ms": full_gc_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="TUI long-session benchmark")
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--quiet-every", type=int, default=25, help="pause 1.5 s after every N turns")
    parser.add_argument("--profile", choices=("replay", "stream"), help="print a cProfile of one phase")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ml-intern-bench-"))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        os.environ[var] = str(home / var.lower())
    result = asyncio.run(run(args.turns, args.sample_every, args.quiet_every, args.profile))
    print(f"turns replayed          {result['turns']} in {result['replay_s']:.1f}s "
          f"({result['replay_s'] / result['turns'] * 1000:.1f} ms/turn)")
    print("turn     RSS MB   widgets")
    for n, rss, widgets in result["samples"]:
        print(f"{n:>5}  {rss:>8.1f}  {widgets:>8}")
    for label, values in (("after a turn", result["latencies"]), ("while streaming", result["sustained"]["latencies"])):
        p50, p95, worst = percentiles(values)
        print(f"keypress-to-paint       {label:<16} p50 {p50:5.1f} ms   p95 {p95:5.1f} ms   max {worst:5.1f} ms"
              f"   (n={len(values)})   budget p95 < 50 ms")
    print(f"peak RSS                {max(s[1] for s in result['samples']):.1f} MB   budget < 400 MB")
    widgets = [s[2] for s in result["samples"]]
    print(f"mounted widgets         first {widgets[0]}  last {widgets[-1]}  max {max(widgets)}   (bounded)")
    for label, stream in (("streaming at 2000/s", result["sustained"]), ("streaming burst", result["burst"])):
        print(f"{label:<23} {stream['chunks_per_s']:5.0f} chunks/s (last chunk on screen {stream['lag_ms']:4.0f} ms "
              f"after it was sent)   {stream['frames']} frames, longest frame {stream['longest_frame_ms']:3.0f} ms, "
              f"longest stall {stream['longest_stall_ms']:3.0f} ms, longest paint gap {stream['longest_gap_ms']:3.0f} ms")
    print("budget: 2000 chunks/s, no frame > 100 ms")
    full_gc = result["full_gc_ms"]
    automatic = [ms for quiet, ms in full_gc if not quiet]
    quiet = [ms for quiet, ms in full_gc if quiet]
    print(f"full GC passes          {len(quiet)} at quiet moments (longest {max(quiet, default=0):.0f} ms), "
          f"{len(automatic)} started by Python mid-activity (longest {max(automatic, default=0):.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
