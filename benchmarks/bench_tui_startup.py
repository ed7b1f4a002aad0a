"""Start-up benchmark: time from process start to first paint and to a prompt that accepts keys, in a subprocess.

    python benchmarks/bench_tui_startup.py [--runs 5]

The child runs the real app headless with the real Agent (litellm loads in the background inside
agent.start()). Budget (design §5): first paint and prompt ready under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import asyncio, json, sys, time
T0 = float(sys.argv[1])
marks = {}
from ml_intern.config import Settings
from ml_intern.tui.app import MLInternApp
marks["imported"] = time.time() - T0

async def main():
    app = MLInternApp(Settings(model_name="anthropic/claude-sonnet-4.6", save_sessions=False), history_file=None,
                      save_settings=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.main_screen
        while screen is None or not screen.is_mounted:
            await asyncio.sleep(0.001)
            screen = app.main_screen
        painted = []
        refresh = screen._compositor_refresh
        def record():
            refresh()
            painted.append(time.time())
        screen._compositor_refresh = record
        while not painted:
            await asyncio.sleep(0.001)
        marks["first_paint"] = painted[0] - T0
        from textual import events
        app.post_message(events.Key("x", "x"))
        while screen.prompt.text != "x":
            await asyncio.sleep(0.001)
        marks["prompt_accepts_keys"] = time.time() - T0
        while not screen.status.info.connected:
            await asyncio.sleep(0.01)
            if time.time() - T0 > 30:
                break
        marks["agent_ready"] = time.time() - T0
    print(json.dumps(marks))

asyncio.run(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description="TUI start-up benchmark")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ml-intern-bench-"))
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[var] = str(home / var.lower())
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("LITELLM_MODE", "PRODUCTION")
    results: list[dict[str, float]] = []
    for _ in range(args.runs):
        start = time.time()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(start)], capture_output=True, text=True, env=env,
                              timeout=120)
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for key in ("imported", "first_paint", "prompt_accepts_keys", "agent_ready"):
        values = [r[key] for r in results]
        print(f"{key:<22} median {statistics.median(values) * 1000:7.0f} ms   "
              f"min {min(values) * 1000:6.0f}   max {max(values) * 1000:6.0f}")
    print("budget: first paint and prompt accepting keys under 500 ms (agent_ready is background loading)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
