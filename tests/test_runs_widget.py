"""The Runs pane renders JobUpdate events: rows, status, cost, log tail and loss sparkline."""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Log, Sparkline

from ml_intern.core.events import JobUpdate
from ml_intern.tui.widgets.runs import RunsPane


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunsPane()


async def test_runs_pane_tracks_jobs_logs_and_loss():
    app = PaneApp()
    async with app.run_test(size=(100, 40)) as pilot:
        pane = app.query_one(RunsPane)
        now = time.time()
        pane.apply(
            JobUpdate(
                job_id="job-a",
                title="sft",
                status="SCHEDULING",
                hardware="a10g-large",
                price_usd_per_hour=1.5,
            )
        )
        pane.apply(
            JobUpdate(
                job_id="job-a",
                status="RUNNING",
                started_at=now - 120,
                log_lines=["step 1 | loss 2.0", "{'loss': 1.5, 'epoch': 0.1}", "loss=1.0"],
            )
        )
        pane.apply(
            JobUpdate(
                job_id="sandbox-1",
                kind="sandbox",
                title="sandbox-1",
                status="RUNNING",
                hardware="cpu-basic",
                started_at=now - 5,
                price_usd_per_hour=0.0,
            )
        )
        await pilot.pause()
        table = app.query_one(DataTable)
        assert table.row_count == 2
        row = [str(cell) for cell in table.get_row("job-a")]
        assert row[0] == "sft" and "RUNNING" in row[1] and row[4] == "a10g-large"
        assert row[2].startswith("2m") and row[3] == "$0.05"
        assert app.query_one(Sparkline).data == [2.0, 1.5, 1.0]
        log = app.query_one(Log)
        assert log.lines[-1] == "loss=1.0"

        pane.apply(
            JobUpdate(
                job_id="job-a",
                status="COMPLETED",
                finished_at=now,
                cost_usd=0.05,
                log_lines=["Training complete"],
            )
        )
        await pilot.pause()
        assert str(table.get_row("job-a")[1]) == "COMPLETED"
        assert log.lines[-1] == "Training complete"

        # Selecting the sandbox row shows its (empty) log instead.
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert pane.selected == "sandbox-1"
        assert app.query_one(Sparkline).data == []
        assert "⧉" in str(table.get_row("sandbox-1")[0])
