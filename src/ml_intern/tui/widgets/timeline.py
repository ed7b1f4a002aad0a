"""Tool-call timeline: one DataTable row per call, and the selected call's full output below it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowDoesNotExist

from ml_intern.tui.widgets.conversation import STATE_GLYPHS, format_duration, summarize_arguments

MAX_ROWS = 5000


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
                self.table.update_cell(tool_call_id, "args", summarize_arguments(tool, arguments, 60))
            return
        record = ToolRecord(tool_call_id, tool, arguments)
        self.records[tool_call_id] = record
        table = self.table
        table.add_row(
            self._state_cell(record.state), tool, "", summarize_arguments(tool, arguments, 60), key=tool_call_id
        )
        if table.row_count > MAX_ROWS:
            oldest = next(iter(self.records))
            self.records.pop(oldest)
            table.remove_row(oldest)
        if table.cursor_row >= table.row_count - 2:
            table.move_cursor(row=table.row_count - 1, animate=False, scroll=True)

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
        table = self.table
        try:
            table.update_cell(record.tool_call_id, "state", self._state_cell(record.state))
            table.update_cell(record.tool_call_id, "time", format_duration(record.duration_s))
        except RowDoesNotExist:
            return
        if self.selected_id == record.tool_call_id:
            self._show_detail(record)

    def clear(self) -> None:
        """Forget every call."""
        self.records.clear()
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
