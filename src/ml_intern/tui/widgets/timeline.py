"""Tool-call timeline: one DataTable row per call, and the selected call's full output below it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowDoesNotExist

from ml_intern.tui.quiet_gc import quiet_gc
from ml_intern.tui.widgets.conversation import STATE_GLYPHS, format_duration, summarize_arguments

MAX_ROWS = 5000
# Any change makes the DataTable re-render every visible row (tens of ms on a small machine), so changes are
# applied in batches, and not while the user types or text streams: a keypress must paint within 50 ms.
QUIET_S = 0.3
MAX_DELAY_S = 2.0
CHECK_INTERVAL_S = 0.1


@dataclass
class ToolRecord:
    """What the timeline knows about one call."""

    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    state: str = "running"
    output: str | None = None
    success: bool = True
    duration_s: float | None = None
    logs: list[str] = field(default_factory=list)


class ToolTimeline(Vertical):
    """All tool calls of the session in a table; selecting a row shows its details."""

    DEFAULT_CSS = """
    ToolTimeline {
        height: 1fr;
        & > DataTable { height: 1fr; min-height: 4; background: transparent; }
        & > #tool-detail-scroll { height: 40%; min-height: 3; border-top: solid $panel; display: none; }
        &.-detail > #tool-detail-scroll { display: block; }
        & #tool-detail { padding: 0 1; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: dict[str, ToolRecord] = {}
        self.selected_id: str | None = None
        self._rows: set[str] = set()  # ids that have a row in the table
        self._pending_rows: list[str] = []
        self._pending_cells: set[str] = set()
        self._pending_since: float | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[str | Content] = DataTable(cursor_type="row", zebra_stripes=True, id="tool-table")
        yield table
        with VerticalScroll(id="tool-detail-scroll"):
            yield Static(markup=False, id="tool-detail")

    def on_mount(self) -> None:
        table = self.table
        table.add_column("", key="state", width=1)
        table.add_column("tool", key="tool", width=12)
        table.add_column("time", key="time", width=6)
        table.add_column("arguments", key="args")
        self.set_interval(CHECK_INTERVAL_S, self._maybe_flush)

    @property
    def table(self) -> DataTable[str | Content]:
        """The table of calls."""
        return self.query_one("#tool-table", DataTable)

    def _state_cell(self, state: str) -> Content:
        glyph, style = STATE_GLYPHS.get(state, ("·", "$text-muted"))
        return Content.styled(glyph, style)

    def add_call(self, tool_call_id: str, tool: str, arguments: dict[str, Any], *, update: bool = False) -> None:
        """Add a row for a new call (with `update`, fill in arguments of a known one)."""
        known = self.records.get(tool_call_id)
        if known is not None:
            if update and arguments and not known.arguments:
                known.arguments = arguments
                self._queue(cells=tool_call_id)
            return
        self.records[tool_call_id] = ToolRecord(tool_call_id, tool, arguments)
        if len(self.records) > MAX_ROWS:
            self.records.pop(next(iter(self.records)))
        self._queue(row=tool_call_id)

    def _queue(self, *, row: str | None = None, cells: str | None = None) -> None:
        if row is not None:
            self._pending_rows.append(row)
        if cells is not None:
            self._pending_cells.add(cells)
        if self._pending_since is None:
            self._pending_since = time.monotonic()

    def _maybe_flush(self) -> None:
        if self._pending_since is None:
            return
        now = time.monotonic()
        if now - quiet_gc.last_activity >= QUIET_S or now - self._pending_since >= MAX_DELAY_S:
            self.flush()

    def flush(self) -> None:
        """Apply every queued change to the table in one batch."""
        if self._pending_since is None:
            return
        self._pending_since = None
        rows, self._pending_rows = self._pending_rows, []
        cells, self._pending_cells = self._pending_cells, set()
        table = self.table
        follow = table.row_count == 0 or table.cursor_row >= table.row_count - 2
        with self.app.batch_update():
            for key in list(self._rows):
                if key not in self.records:
                    self._rows.discard(key)
                    try:
                        table.remove_row(key)
                    except RowDoesNotExist:
                        pass
            for key in rows:
                record = self.records.get(key)
                if record is None or key in self._rows:
                    continue
                table.add_row(*self._cells(record), key=key)
                self._rows.add(key)
            for key in cells:
                record = self.records.get(key)
                if record is None or key not in self._rows or key in rows:
                    continue
                try:
                    for column, value in zip(("state", "tool", "time", "args"), self._cells(record), strict=True):
                        table.update_cell(key, column, value)
                except RowDoesNotExist:
                    continue
            if rows and follow:
                table.move_cursor(row=table.row_count - 1, animate=False, scroll=True)

    def _cells(self, record: ToolRecord) -> tuple[Content, str, str, str]:
        return (
            self._state_cell(record.state),
            record.tool,
            format_duration(record.duration_s),
            summarize_arguments(record.tool, record.arguments, 60),
        )

    def on_descendant_focus(self) -> None:
        """Bring the table up to date as soon as the user looks at it."""
        self.flush()

    def set_state(self, tool_call_id: str, state: str, tool: str = "") -> None:
        """Show a call's new state."""
        record = self.records.get(tool_call_id)
        if record is None:
            self.add_call(tool_call_id, tool or "?", {})
            record = self.records[tool_call_id]
        record.state = state
        self._update_row(record)

    def set_output(self, tool_call_id: str, tool: str, output: str, success: bool, duration_s: float | None) -> None:
        """Record a call's result."""
        record = self.records.get(tool_call_id)
        if record is None:
            self.add_call(tool_call_id, tool, {})
            record = self.records[tool_call_id]
        record.output, record.success, record.duration_s = output, success, duration_s
        if record.state in {"running", "approved", "awaiting_approval", "queued"}:
            record.state = "done" if success else "failed"
        self._update_row(record)

    def add_log(self, tool_call_id: str, line: str) -> None:
        """Keep a progress line for a running call."""
        record = self.records.get(tool_call_id)
        if record is not None:
            record.logs.append(line)
            if len(record.logs) > 500:
                del record.logs[:250]
            if self.selected_id == tool_call_id:
                self._show_detail(record)

    def _update_row(self, record: ToolRecord) -> None:
        self._queue(cells=record.tool_call_id)
        if self.selected_id == record.tool_call_id:
            self._show_detail(record)

    def clear(self) -> None:
        """Forget every call."""
        self.records.clear()
        self._rows.clear()
        self._pending_rows.clear()
        self._pending_cells.clear()
        self._pending_since = None
        self.table.clear()
        self.selected_id = None
        self.remove_class("-detail")

    @on(DataTable.RowSelected, "#tool-table")
    @on(DataTable.RowHighlighted, "#tool-table")
    def _row_chosen(self, event: DataTable.RowSelected | DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        record = self.records.get(key) if key else None
        if record is None:
            return
        if isinstance(event, DataTable.RowHighlighted) and not self.has_class("-detail"):
            return
        self.selected_id = record.tool_call_id
        self.add_class("-detail")
        self._show_detail(record)

    def _show_detail(self, record: ToolRecord) -> None:
        parts: list[str | tuple[str, str]] = [
            (record.tool, "bold"),
            (f"  {record.state}  {format_duration(record.duration_s)}\n", "$text-muted"),
            json.dumps(record.arguments, indent=2, ensure_ascii=False),
        ]
        if record.output is not None:
            parts += [("\n── output\n", "$text-muted"), (record.output, "" if record.success else "$text-error")]
        elif record.logs:
            parts += [("\n── log\n", "$text-muted"), "\n".join(record.logs[-100:])]
        self.query_one("#tool-detail", Static).update(Content.assemble(*parts))
