"""Headless renderers: human text (answer on stdout, activity on stderr) or one JSON event per line."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ml_intern.core import events as ev


class JsonRenderer:
    """Writes every event as one JSON line on stdout and nothing else there."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def render(self, event: ev.Event) -> None:
        """Print the event as a JSON line."""
        self.out.write(json.dumps(event.to_json_dict(), ensure_ascii=False) + "\n")
        self.out.flush()


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _args_summary(tool: str, arguments: dict) -> str:
    for key in ("command", "path", "operation", "query", "url", "repo_id", "dataset", "task"):
        if key in arguments:
            value = arguments[key]
            extra = f" {arguments['path']}" if key == "operation" and "path" in arguments else ""
            return _one_line(f"{value}{extra}", 100)
    return _one_line(json.dumps(arguments, ensure_ascii=False), 100)


class TextRenderer:
    """Streams the assistant's answer to stdout and reports tool activity on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = self.err.isatty() if color is None else color
        self._at_line_start = True
        self._tool_names: dict[str, str] = {}

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _note(self, text: str, code: str = "2") -> None:
        if not self._at_line_start:
            self.out.write("\n")
            self.out.flush()
            self._at_line_start = True
        self.err.write(self._style(text, code) + "\n")
        self.err.flush()

    def _write_answer(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        if text:
            self._at_line_start = text.endswith("\n")

    def render(self, event: ev.Event) -> None:
        """Print one event."""
        match event:
            case ev.AssistantChunk(content=content):
                self._write_answer(content)
            case ev.AssistantMessage(content=content):
                self._write_answer(content)
                if not self._at_line_start:
                    self._write_answer("\n")
            case ev.AssistantStreamEnd():
                if not self._at_line_start:
                    self._write_answer("\n")
            case ev.ToolCall(tool=tool, arguments=arguments, tool_call_id=call_id):
                self._tool_names[call_id] = tool
                self._note(f"▸ {tool}  {_args_summary(tool, arguments)}", "36")
            case ev.ToolOutput(tool=tool, output=output, success=success, duration_s=duration):
                took = f" {duration:.1f}s" if duration else ""
                if success:
                    self._note(f"  ✓ {tool}{took}", "32")
                else:
                    self._note(f"  ✗ {tool}{took}: {_one_line(output, 200)}", "31")
            case ev.ToolLog(tool=tool, log=log):
                for line in str(log).splitlines()[-20:]:
                    self._note(f"  {tool}: {line}")
            case ev.ToolStateChange(state="rejected", tool=tool):
                self._note(f"  ⊘ {tool} not run", "33")
            case ev.ApprovalRequired(tools=items):
                for item in items:
                    self._note(f"? {item.tool} needs approval ({item.reason})", "33")
            case ev.PlanUpdate(plan=plan):
                done = sum(1 for p in plan if p.status == "completed")
                marks = {"completed": "✓", "in_progress": "▸", "pending": "○"}
                self._note(f"plan ({done}/{len(plan)} done)", "35")
                for item in plan:
                    self._note(f"  {marks[item.status]} {item.content}", "35")
            case ev.Retrying(attempt=attempt, delay_s=delay, reason=reason):
                self._note(f"! retrying in {delay:.1f}s (attempt {attempt}): {reason}", "33")
            case ev.DoomLoopDetected(tools=tools):
                self._note(f"! repetition guard: {' -> '.join(tools)}", "33")
            case ev.Compacted(message=message):
                self._note(f"context compacted: {message}", "35")
            case ev.CompactSkipped(reason=reason):
                self._note(f"compaction skipped: {reason}", "33")
            case ev.IterationLimitReached(message=message):
                self._note(f"! {message}", "33")
            case ev.SessionTerminated(message=message):
                self._note(f"session terminated: {message}", "31")
            case ev.Error(error=error):
                self._note(f"error: {error}", "31")
            case ev.Interrupted():
                self._note("interrupted", "33")
            case ev.JobUpdate(job_id=job_id, status=status, url=url) if status:
                self._note(f"job {job_id}: {status} {url}".rstrip(), "36")
            case _:
                pass
