"""Drive `--demo` with Pilot and save SVG screenshots to screenshots/ (main screen, approvals, Runs pane, 80x24).

    python scripts/make_screenshots.py [--out screenshots] [--png]

`--png` also renders PNGs with rsvg-convert when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _isolate() -> None:
    home = Path(tempfile.mkdtemp(prefix="ml-intern-shots-"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
        os.environ[var] = str(home / sub)


async def _until(pilot: Any, predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo did not reach the expected state")
        await pilot.pause(0.05)


async def _freeze(app: Any) -> None:
    from ml_intern.tui.widgets.prompt import PromptInput

    for prompt in app.main_screen.query(PromptInput):
        prompt.cursor_blink = False


async def shoot(out: Path) -> list[Path]:
    from ml_intern.config import Settings
    from ml_intern.demo import DEMO_JOB_TOOL, DemoLLM, build_demo_agent
    from ml_intern.tui.app import MLInternApp
    from ml_intern.tui.screens.approval import ApprovalScreen

    written: list[Path] = []
    settings = Settings(theme="hf-dark")

    def factory() -> Any:
        return build_demo_agent(settings, llm=DemoLLM(chunk_delay=0.002))

    app = MLInternApp(settings, demo=True, agent_factory=factory, history_file=None, save_settings=False)
    async with app.run_test(size=(140, 42)) as pilot:
        screen = app.main_screen
        await _until(pilot, lambda: screen.status.info.connected)
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await _freeze(app)
        await pilot.pause(0.2)
        written.append(Path(app.save_screenshot("approval-diff.svg", str(out))))
        await pilot.press("y")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.pause(0.2)
        written.append(Path(app.save_screenshot("approval-bash.svg", str(out))))
        await pilot.press("y")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalScreen) and app.screen.current.tool == DEMO_JOB_TOOL)
        await pilot.pause(0.2)
        written.append(Path(app.save_screenshot("approval-job.svg", str(out))))
        await pilot.press("y")
        await _until(pilot, lambda: not screen.working and screen.status.info.session_tokens > 9000, timeout=30)
        await pilot.pause(0.5)
        await _freeze(app)
        written.append(Path(app.save_screenshot("main.svg", str(out))))
        # The Runs pane on its own column: plan and timeline hidden, the finished demo job selected.
        await pilot.press("ctrl+g", "ctrl+t")
        await pilot.pause(0.3)
        written.append(Path(app.save_screenshot("runs-pane.svg", str(out))))
        await pilot.press("ctrl+g", "ctrl+t")
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.5)
        written.append(Path(app.save_screenshot("narrow-80x24.svg", str(out))))
        await pilot.press("ctrl+b")
        await pilot.pause(0.3)
        written.append(Path(app.save_screenshot("narrow-80x24-panes.svg", str(out))))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "screenshots")
    parser.add_argument("--png", action="store_true", help="also render PNGs with rsvg-convert")
    args = parser.parse_args()
    _isolate()
    args.out.mkdir(parents=True, exist_ok=True)
    written = asyncio.run(shoot(args.out))
    for path in written:
        print(path)
        if args.png and shutil.which("rsvg-convert"):
            subprocess.run(["rsvg-convert", str(path), "-o", str(path.with_suffix(".png"))], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
