"""The Runs pane: remote jobs and sandboxes with status, cost, a live log tail and a loss sparkline."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Log, Sparkline, Static

from ml_intern.core.events import JobUpdate
from ml_intern.core.jobs import TERMINAL_STAGES, parse_metrics

_MAX_LINES = 500
_MAX_POINTS = 300
_LOSS_KEYS = ("loss", "train_loss", "train/loss", "eval_loss")
# Status -> (theme variable, bold)
_STATUS_STYLE = {
    "RUNNING": ("success", True),
    "SCHEDULING": ("warning", False),
    "BUILDING": ("warning", False),
    "COMPLETED": ("success", False),
    "ERROR": ("error", True),
    "CANCELED": ("text-muted", False),
}


@dataclass
class RunRecord:
    """What the pane knows about one job or sandbox."""

    job_id: str
    kind: str = "job"
    title: str = ""
    status: str = ""
    hardware: str = ""
    url: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    cost_usd: float | None = None
    price_usd_per_hour: float | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=_MAX_LINES))
    loss: deque[float] = field(default_factory=lambda: deque(maxlen=_MAX_POINTS))
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL_STAGES and self.status not in ("", "STOPPED", "DELETED")

    def elapsed_s(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or (now if now is not None else time.time())
        return max(0.0, end - self.started_at)

    def cost(self, now: float | None = None) -> float | None:
        if self.active and self.price_usd_per_hour is not None and self.started_at is not None:
            return self.price_usd_per_hour * (self.elapsed_s(now) or 0.0) / 3600
        return self.cost_usd


def _elapsed_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class RunsPane(Vertical):
    """Remote runs fed by `apply(JobUpdate)`; highlight a row to see its log tail and loss curve."""

    DEFAULT_CSS = """
    RunsPane {
        height: 1fr;
    }
    RunsPane > DataTable {
        height: auto;
        max-height: 12;
    }
    RunsPane > #runs-metric {
        height: auto;
        max-height: 3;
        color: $text-muted;
        padding: 0 1;
    }
    RunsPane > Sparkline {
        height: 3;
        margin: 0 1;
    }
    RunsPane > Log {
        height: 1fr;
        border-top: solid $panel;
    }
    RunsPane > #runs-empty {
        color: $text-muted;
        padding: 1;
    }
    """

    # Hardware last: in a narrow side pane it is the column that scrolls out of view (the metric line repeats it).
    COLUMNS = (
        ("run", "Run"),
        ("status", "Status"),
        ("elapsed", "Elapsed"),
        ("cost", "Cost"),
        ("hardware", "Hardware"),
    )
    RUN_LABEL_WIDTH = 20

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.runs: dict[str, RunRecord] = {}
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            "No remote runs yet. Jobs and sandboxes started by the agent show up here.", id="runs-empty"
        )
        table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True, id="runs-table")
        for key, label in self.COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="runs-metric", markup=False)
        yield Sparkline([], summary_function=min, id="runs-sparkline")
        yield Log(max_lines=_MAX_LINES, id="runs-log")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#runs-table", DataTable)

    def apply(self, event: JobUpdate) -> None:
        """Merge one JobUpdate into the pane."""
        run = self.runs.get(event.job_id)
        is_new = run is None
        if run is None:
            run = RunRecord(job_id=event.job_id, kind=event.kind)
            self.runs[event.job_id] = run
        for name in (
            "title",
            "status",
            "hardware",
            "url",
            "started_at",
            "finished_at",
            "cost_usd",
            "price_usd_per_hour",
        ):
            value = getattr(event, name)
            if value not in (None, ""):
                setattr(run, name, value)
        new_points: list[float] = []
        for line in event.log_lines:
            run.lines.append(line)
            metrics = parse_metrics(line)
            run.metrics.update(metrics)
            loss = next((metrics[k] for k in _LOSS_KEYS if k in metrics), None)
            if loss is not None:
                new_points.append(loss)
        if not event.log_lines and event.metrics:
            run.metrics.update(event.metrics)
            loss = next((event.metrics[k] for k in _LOSS_KEYS if k in event.metrics), None)
            if loss is not None:
                new_points.append(loss)
        run.loss.extend(new_points)

        table = self.table
        cells = self._cells(run)
        if is_new:
            table.add_row(*cells, key=run.job_id)
            self.query_one("#runs-empty").display = False
            if self.selected is None:
                self._select(run.job_id)  # shows every line kept so far, this update's included
                return
        else:
            for (column, _), value in zip(self.COLUMNS, cells, strict=True):
                table.update_cell(run.job_id, column, value, update_width=True)
        if run.job_id == self.selected:
            if event.log_lines:
                self.query_one(Log).write_lines(event.log_lines)
            if new_points or is_new:
                self._show_metrics(run)

    def _cells(self, run: RunRecord, now: float | None = None) -> tuple[Text, ...]:
        label = run.title or run.job_id[:12]
        if run.kind == "sandbox":
            label = f"⧉ {label}"
        cost = run.cost(now)
        width = self.RUN_LABEL_WIDTH
        return (
            Text(label if len(label) <= width else label[: width - 1] + "…"),
            self._status_text(run.status),
            Text(_elapsed_text(run.elapsed_s(now))),
            Text("-" if cost is None else f"${cost:.2f}"),
            Text(run.hardware or "-"),
        )

    def _status_text(self, status: str) -> Text:
        variable, bold = _STATUS_STYLE.get(status, ("", False))
        color = self.app.theme_variables.get(variable, "") if variable else ""
        style = " ".join(part for part in ("bold" if bold else "", color) if part)
        return Text(status or "-", style=style)

    def _tick(self) -> None:
        now = time.time()
        table = self.table
        for run in self.runs.values():
            if run.active and run.started_at is not None:
                _, _, elapsed, cost, _ = self._cells(run, now)
                table.update_cell(run.job_id, "elapsed", elapsed)
                table.update_cell(run.job_id, "cost", cost)

    def _select(self, job_id: str) -> None:
        self.selected = job_id
        run = self.runs[job_id]
        log = self.query_one(Log)
        log.clear()
        log.write_lines(list(run.lines))
        self._show_metrics(run)

    def _show_metrics(self, run: RunRecord) -> None:
        self.query_one(Sparkline).data = list(run.loss)
        metric = self.query_one("#runs-metric", Static)
        where = f"{run.title or run.job_id} · {run.hardware}" if run.hardware else run.title or run.job_id
        if run.loss:
            shown = ", ".join(f"{k}={v:g}" for k, v in list(run.metrics.items())[:6] if k not in _LOSS_KEYS)
            extra = f" · {shown}" if shown else ""
            metric.update(f"{where}\nloss {run.loss[-1]:g} (min {min(run.loss):g}){extra}")
        else:
            metric.update(f"{where}\n{run.url}" if run.url else where)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _on_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None and key != self.selected and key in self.runs:
            self._select(key)


if __name__ == "__main__":
    import itertools
    import random

    from textual.app import App

    class RunsDemo(App[None]):
        """Fake jobs streaming logs into the Runs pane."""

        def compose(self) -> ComposeResult:
            yield RunsPane()

        def on_mount(self) -> None:
            pane = self.query_one(RunsPane)
            now = time.time()
            pane.apply(
                JobUpdate(
                    job_id="68a1b2c3d4e5f6a7b8c9d0e1",
                    title="sft-qwen",
                    status="RUNNING",
                    hardware="a10g-large",
                    started_at=now - 600,
                    price_usd_per_hour=1.5,
                )
            )
            pane.apply(
                JobUpdate(
                    job_id="sandbox-1a2b3c4d",
                    kind="sandbox",
                    title="sandbox-1a2b3c4d",
                    status="RUNNING",
                    hardware="cpu-basic",
                    started_at=now - 60,
                    price_usd_per_hour=0.0,
                )
            )
            pane.apply(
                JobUpdate(
                    job_id="68a0000000000000000000ff",
                    title="eval-gsm8k",
                    status="COMPLETED",
                    hardware="t4-small",
                    started_at=now - 3600,
                    finished_at=now - 1800,
                    cost_usd=0.3,
                    log_lines=["done"],
                )
            )
            self._step = itertools.count(1)
            self._loss = 2.5
            self.set_interval(0.3, self._feed)

        def _feed(self) -> None:
            step = next(self._step)
            self._loss = max(0.05, self._loss * 0.97 + random.uniform(-0.05, 0.05))
            self.query_one(RunsPane).apply(
                JobUpdate(
                    job_id="68a1b2c3d4e5f6a7b8c9d0e1",
                    status="RUNNING",
                    log_lines=[
                        f"{{'loss': {self._loss:.4f}, 'learning_rate': 2e-05, 'epoch': {step / 100:.2f}}}"
                    ],
                )
            )

    RunsDemo().run()
