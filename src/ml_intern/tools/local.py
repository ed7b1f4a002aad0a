"""bash, read, write and edit on the user's machine (tool_runtime == "local")."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import difflib
import os
import re
import signal
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ml_intern import paths
from ml_intern.core.tools import ApprovalInfo, Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools.edit_utils import (
    EDIT_MODES,
    EditError,
    apply_edit,
    numbered_snippet,
    python_warnings,
    unified_diff,
)

if TYPE_CHECKING:
    from ml_intern.config import Settings

MAX_OUTPUT_CHARS = 25_000
HEAD_CHARS = MAX_OUTPUT_CHARS // 4  # the rest of the budget keeps the end, where errors usually are
MAX_TIMEOUT_S = 36_000
MAX_LINE_LENGTH = 4000
DEFAULT_READ_LINES = 2000
MAX_READ_CHARS = 100_000
LOG_INTERVAL_S = 0.1  # at most ~10 tool_log events per second
MAX_LOG_CHARS = 4000  # per tool_log event; a flood keeps its newest lines
KILL_GRACE_S = 0.5
DRAIN_AFTER_EXIT_S = 0.3  # background jobs may keep the pipe open after the shell exits
MAX_DRAIN_S = 5.0
MAX_PARTIAL_LINE = 64_000

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

BASH_DESCRIPTION = (
    "Run a shell command on the user's machine and return its combined stdout/stderr and exit code. "
    "Output is streamed live to the user; long output keeps the start and the end, with the full text saved "
    "to a file whose path is given. Commands run non-interactively (no stdin). Each call is a fresh shell: "
    "use work_dir instead of cd. For long jobs (training, downloads) start them in the background, e.g. "
    "`nohup python train.py > train.log 2>&1 &`, then poll the log with later calls. "
    "Prefer read/write/edit over cat, sed or echo for files."
)
READ_DESCRIPTION = (
    "Read a text file with line numbers (`cat -n` style). Use offset (1-based line) and limit to page through "
    "long files; lines longer than 4000 characters are cut. You must read an existing file before write or "
    "edit may change it. Directories and binary files are reported, not dumped."
)
WRITE_DESCRIPTION = (
    "Create a file or replace its whole content (parent directories are created). An existing file must be "
    "read first. Prefer edit for changes to part of a file. Python files are syntax-checked and training "
    "scripts without push_to_hub/hub_model_id get a warning."
)
EDIT_DESCRIPTION = (
    "Replace text in a file that was read first. old_str must match exactly one place, including "
    "indentation; if it is not found, a second try ignores trailing whitespace, indentation and smart "
    "quotes. Give a few surrounding lines to make it unique, or set replace_all to change every match. "
    "mode append_after / prepend_before inserts new_str after / before old_str instead of replacing it "
    "(as whole lines when old_str ends or starts a line)."
)


# -- shared helpers ---------------------------------------------------------------------------------


def _settings_value(ctx: ToolContext, settings: Settings, name: str) -> Any:
    return getattr(ctx.config, name, None) or getattr(settings, name)


def resolve_path(path: str, ctx: ToolContext) -> Path:
    """Resolve a user-given path against the tool's working directory."""
    if not isinstance(path, str) or not path.strip():
        raise ToolError("path must be a non-empty string.")
    candidate = Path(path.strip()).expanduser()
    if not candidate.is_absolute():
        candidate = Path(ctx.workdir) / candidate
    return candidate.resolve()


def _display(path: Path, ctx: ToolContext) -> str:
    try:
        return str(path.relative_to(Path(ctx.workdir).resolve()))
    except ValueError:
        return str(path)


def _atomic_write(path: Path, content: str) -> None:
    """Write through a temp file in the same directory, then rename over the target (keeps its mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp_name, mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _read_text(path: Path) -> str | None:
    """Return a file's text, or None when it does not exist; raise ToolError for binary files."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ToolError(f"{path} is a directory, not a file.") from None
    if b"\0" in data[:8192]:
        raise ToolError(f"{path} is a binary file ({len(data):,} bytes); it cannot be edited as text.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}); editing it here could corrupt it. "
            "Convert it first (e.g. with iconv in bash)."
        ) from None


def _similar_names(path: Path) -> str:
    parent = path.parent
    try:
        names = [entry.name for entry in parent.iterdir()] if parent.is_dir() else []
    except OSError:
        names = []
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.5)
    return f" Similar names in {parent}: {', '.join(close)}." if close else ""


# -- bash -------------------------------------------------------------------------------------------


class _Output:
    """Collects cleaned output lines with bounded memory; spills everything to a file once it is too long."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.chars = 0
        self.head = ""
        self.tail: deque[str] = deque()
        self.tail_chars = 0
        self.spill_path: Path | None = None
        self._spill: TextIO | None = None

    async def add(self, lines: list[str]) -> None:
        if not lines:
            return
        added = sum(len(line) + 1 for line in lines)
        self.chars += added
        if self._spill is None:
            self.lines.extend(lines)
            if self.chars > MAX_OUTPUT_CHARS:
                await self._start_spill()
            return
        self._keep_tail(lines)
        await asyncio.to_thread(self._spill.write, "".join(line + "\n" for line in lines))

    async def _start_spill(self) -> None:
        name = f"bash_{time.strftime('%Y%m%d-%H%M%S')}_{uuid.uuid4().hex[:8]}.txt"

        def open_spill() -> tuple[Path, TextIO]:
            target = paths.spill_dir() / name
            handle = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            handle.write("".join(line + "\n" for line in self.lines))
            return target, handle

        self.spill_path, self._spill = await asyncio.to_thread(open_spill)
        text = "\n".join(self.lines)
        self.head = text[:HEAD_CHARS]
        self._keep_tail(self.lines)
        self.lines = []

    def _keep_tail(self, lines: list[str]) -> None:
        budget = MAX_OUTPUT_CHARS - HEAD_CHARS
        for line in lines:
            self.tail.append(line)
            self.tail_chars += len(line) + 1
        while len(self.tail) > 1 and self.tail_chars - len(self.tail[0]) - 1 >= budget:
            self.tail_chars -= len(self.tail.popleft()) + 1

    async def close(self) -> None:
        if self._spill is not None:
            await asyncio.to_thread(self._spill.close)

    def render(self) -> str:
        if self.spill_path is None:
            return "\n".join(self.lines)
        tail = "\n".join(self.tail)[-(MAX_OUTPUT_CHARS - HEAD_CHARS) :]
        omitted = max(0, self.chars - len(self.head) - len(tail))
        return (
            f"{self.head}\n\n... [{omitted:,} characters omitted; full output ({self.chars:,} characters) saved to "
            f"{self.spill_path}; read it with read or grep] ...\n\n{tail}"
        )


def _clean_line(line: str) -> str:
    line = _ANSI.sub("", line).rstrip("\r")
    if "\r" in line:  # progress bars redraw with carriage returns: keep what a terminal would show last
        line = line.rsplit("\r", 1)[-1]
    return line


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_created_group(creation: asyncio.Future[asyncio.subprocess.Process]) -> None:
    """Kill the process group of a shell whose start was interrupted, once it exists."""
    if creation.cancelled() or creation.exception() is not None:
        return
    _signal_group(creation.result().pid, signal.SIGKILL)


async def _wait_exit(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> int:
    """Wait for the shell to exit, even while a background job keeps its output pipe open.

    Python 3.11's `Process.wait()` also waits for the pipes to close, so it would hang on `cmd &`.
    """
    while process.returncode is None:
        if reader.done():
            return await process.wait()
        await asyncio.wait({reader}, timeout=0.05)
    return process.returncode


async def _stop_group(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a short grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_wait_exit(process, reader), KILL_GRACE_S)
    _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_wait_exit(process, reader), KILL_GRACE_S)


async def _drain(reader: asyncio.Task[None], bytes_read: Callable[[], int], timed_out: bool) -> bool:
    """Let the reader finish what the shell left in the pipe; False if something else keeps it open."""
    deadline = time.monotonic() + (KILL_GRACE_S if timed_out else MAX_DRAIN_S)
    while time.monotonic() < deadline:
        before = bytes_read()
        done, _ = await asyncio.wait({reader}, timeout=DRAIN_AFTER_EXIT_S)
        if done:
            reader.result()
            return True
        if bytes_read() == before:
            return False  # idle: a background job holds the pipe without writing
    return False


async def _run_bash(arguments: dict[str, Any], ctx: ToolContext, settings: Settings) -> ToolResult:
    command = arguments.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ToolError("command must be a non-empty string.")
    work_dir = arguments.get("work_dir")
    cwd = resolve_path(work_dir, ctx) if work_dir else Path(ctx.workdir)
    if not cwd.is_dir():
        raise ToolError(f"work_dir {cwd} does not exist or is not a directory.")
    timeout = arguments.get("timeout") or _settings_value(ctx, settings, "bash_timeout_s")
    try:
        timeout = max(1.0, min(float(timeout), float(MAX_TIMEOUT_S)))
    except (TypeError, ValueError):
        raise ToolError("timeout must be a number of seconds.") from None

    ctx.state.record_side_effect(f"bash: {command}")
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # so Python output streams instead of arriving at exit
    creation = asyncio.ensure_future(
        asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,  # own process group: timeouts and interrupts kill children too
        )
    )
    try:
        # Shielded: cancelling creation half-way makes Python 3.11 kill only the shell and then wait for the
        # pipes to close, which a child (`sleep 30`) keeps open; an interrupt would hang until it exits.
        process = await asyncio.shield(creation)
    except asyncio.CancelledError:
        creation.add_done_callback(_kill_created_group)
        raise
    output = _Output()
    pending_log: list[str] = []
    pending_chars = 0
    bytes_read = 0

    def flush_log() -> None:
        nonlocal pending_chars
        if not pending_log:
            return
        lines = pending_log[:]
        pending_log.clear()
        if pending_chars > MAX_LOG_CHARS:
            kept: list[str] = []
            size = 0
            for line in reversed(lines):
                size += len(line) + 1
                if size > MAX_LOG_CHARS:
                    break
                kept.append(line[-MAX_LOG_CHARS:])
            skipped = len(lines) - len(kept)
            lines = [f"... ({skipped} lines)", *reversed(kept)] if skipped else list(reversed(kept))
        pending_chars = 0
        ctx.log("\n".join(lines))

    async def log_ticker() -> None:
        while True:
            await asyncio.sleep(LOG_INTERVAL_S)
            flush_log()

    async def read_output() -> None:
        nonlocal pending_chars, bytes_read
        assert process.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        partial = ""
        while True:
            data = await process.stdout.read(65536)
            bytes_read += len(data)
            text = decoder.decode(data, final=not data)
            partial += text
            if data:
                *complete, partial = partial.split("\n")
                if len(partial) > MAX_PARTIAL_LINE:
                    complete.append(partial)
                    partial = ""
            else:
                complete = [partial] if partial else []
            lines = [_clean_line(line) for line in complete]
            pending_log.extend(lines)
            pending_chars += sum(len(line) + 1 for line in lines)
            await output.add(lines)
            if not data:
                return

    ticker = asyncio.create_task(log_ticker())
    reader = asyncio.create_task(read_output())
    timed_out = False
    pipe_left_open = False
    started = time.monotonic()
    try:
        try:
            await asyncio.wait_for(_wait_exit(process, reader), timeout)
        except TimeoutError:
            timed_out = True
            await _stop_group(process, reader)
        pipe_left_open = not await _drain(reader, lambda: bytes_read, timed_out)
    except asyncio.CancelledError:
        _signal_group(process.pid, signal.SIGKILL)  # user interrupt: no grace period
        raise
    finally:
        ticker.cancel()
        reader.cancel()
        await asyncio.gather(ticker, reader, return_exceptions=True)
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGKILL)
        if pipe_left_open:
            # Stop reading what a background job still writes; the transport has no public close.
            transport = getattr(process, "_transport", None)
            if transport is not None:
                transport.close()
        await output.close()
    flush_log()

    elapsed = time.monotonic() - started
    text = output.render().rstrip("\n")
    parts = [text if text.strip() else "(no output)"]
    code = process.returncode
    if timed_out:
        parts.append(
            f"Command timed out after {timeout:g}s and was killed (with every process it started). "
            "Run long jobs in the background, e.g. `nohup CMD > job.log 2>&1 &`, then poll job.log "
            "with short commands, or pass a larger timeout."
        )
    elif code:
        parts.append(f"exit code {code}" + (f" (killed by signal {-code})" if code < 0 else ""))
    if pipe_left_open and not timed_out:
        parts.append(
            "Note: a background process still holds this command's output; redirect its output to a file "
            "(`> job.log 2>&1 &`) so it is not cut off."
        )
    data = {"exit_code": code, "timed_out": timed_out, "duration_s": round(elapsed, 3)}
    if output.spill_path is not None:
        data["full_output_path"] = str(output.spill_path)
    return ToolResult("\n".join(parts), success=not timed_out and code == 0, data=data)


# -- read -------------------------------------------------------------------------------------------


def _read_file(path: Path, offset: int, limit: int) -> str:
    if not path.exists():
        raise ToolError(f"{path} does not exist.{_similar_names(path)}")
    if path.is_dir():
        try:
            entries = sorted(path.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        except OSError as exc:
            raise ToolError(f"{path} is a directory and cannot be listed: {exc.strerror}") from None
        shown = [entry.name + ("/" if entry.is_dir() else "") for entry in entries[:20]]
        more = f", ... ({len(entries) - 20} more)" if len(entries) > 20 else ""
        return_text = ", ".join(shown) + more if shown else "(empty)"
        raise ToolError(
            f"{path} is a directory, not a file. It contains: {return_text}. Read a file inside it."
        )
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if b"\0" in handle.read(8192):
            raise ToolError(
                f"{path} is a binary file ({size:,} bytes); not shown. Inspect it with bash (e.g. `file`, "
                "`xxd | head`) or a Python library for its format."
            )
    if size == 0:
        return f"(empty file: {path})"
    shown: list[str] = []
    chars = 0
    last = offset - 1
    total = 0
    stopped_early = False
    with open(path, encoding="utf-8", errors="replace", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            total = number
            if number < offset or stopped_early:
                continue
            if number >= offset + limit:
                stopped_early = True
                continue
            line = line.rstrip("\n")
            if len(line) > MAX_LINE_LENGTH:
                line = line[:MAX_LINE_LENGTH] + "..."
            entry = f"{number:>6}\t{line}"
            if chars + len(entry) > MAX_READ_CHARS and shown:
                stopped_early = True
                continue
            shown.append(entry)
            chars += len(entry) + 1
            last = number
    if offset > total:
        raise ToolError(f"offset {offset} is past the end of {path} ({total} lines).")
    text = "\n".join(shown)
    if last < total:
        text += f"\n\n(showing lines {offset}-{last} of {total}; use offset={last + 1} to read on)"
    return text


async def _read(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    path = resolve_path(arguments.get("path", ""), ctx)
    offset = arguments.get("offset") or 1
    limit = arguments.get("limit") or DEFAULT_READ_LINES
    try:
        offset, limit = max(1, int(offset)), max(1, int(limit))
    except (TypeError, ValueError):
        raise ToolError("offset and limit must be integers.") from None
    try:
        text = await asyncio.to_thread(_read_file, path, offset, limit)
    except PermissionError:
        raise ToolError(f"permission denied: {path}") from None
    ctx.state.files_read.add(str(path))
    return ToolResult(text, data={"path": str(path)})


# -- write ------------------------------------------------------------------------------------------


def _must_have_read(path: Path, ctx: ToolContext, action: str) -> None:
    if str(path) not in ctx.state.files_read:
        raise ToolError(
            f"You must read {_display(path, ctx)} before {action} it: it already exists and its current "
            "content has not been seen in this session. Call read on it first."
        )


async def _write(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    path = resolve_path(arguments.get("path", ""), ctx)
    content = arguments.get("content")
    if not isinstance(content, str):
        raise ToolError("content must be a string.")
    if path.is_dir():
        raise ToolError(f"{path} is a directory.")
    existed = path.exists()
    if existed:
        _must_have_read(path, ctx, "overwriting")
    ctx.state.record_file_change(path)
    try:
        await asyncio.to_thread(_atomic_write, path, content)
    except OSError as exc:
        raise ToolError(f"could not write {path}: {exc.strerror or exc}") from None
    ctx.state.files_read.add(str(path))
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    verb = "Overwrote" if existed else "Created"
    parts = [f"{verb} {_display(path, ctx)} ({lines} lines, {len(content.encode()):,} bytes)."]
    parts += [f"WARNING: {w}" for w in python_warnings(path.name, content)]
    return ToolResult("\n".join(parts), data={"path": str(path), "created": not existed})


async def _describe_write(arguments: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
    path = resolve_path(arguments.get("path", ""), ctx)
    content = arguments.get("content")
    if not isinstance(content, str):
        return ApprovalInfo(preview="", warnings=["content is not a string"])
    warnings = python_warnings(path.name, content)
    try:
        old = await asyncio.to_thread(_read_text, path)
    except ToolError as exc:
        return ApprovalInfo(preview="", warnings=[str(exc), *warnings])
    if old is not None and str(path) not in ctx.state.files_read:
        warnings.insert(0, "This file exists and was not read first; the write will be refused.")
    diff = unified_diff(old or "", content, _display(path, ctx))
    return ApprovalInfo(preview=diff, warnings=warnings)


# -- edit -------------------------------------------------------------------------------------------


def _plan_edit(path: Path, arguments: dict[str, Any]) -> tuple[str, str, Any]:
    """Return (old content, new content, outcome) without writing; line endings are kept as they were."""
    old = _read_text(path)
    if old is None:
        raise ToolError(f"{path} does not exist. Use write to create it.{_similar_names(path)}")
    old_str, new_str = arguments.get("old_str"), arguments.get("new_str")
    if not isinstance(old_str, str) or not isinstance(new_str, str):
        raise ToolError("old_str and new_str must be strings.")
    mode = arguments.get("mode") or "replace"
    crlf = "\r\n" in old
    working = old.replace("\r\n", "\n") if crlf else old
    try:
        outcome = apply_edit(
            working,
            old_str.replace("\r\n", "\n"),
            new_str.replace("\r\n", "\n"),
            replace_all=bool(arguments.get("replace_all")),
            mode=mode,
        )
    except EditError as exc:
        raise ToolError(str(exc)) from None
    new = outcome.content.replace("\n", "\r\n") if crlf else outcome.content
    return old, new, outcome


async def _edit(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    path = resolve_path(arguments.get("path", ""), ctx)
    if path.exists():
        _must_have_read(path, ctx, "editing")
    _, new, outcome = await asyncio.to_thread(_plan_edit, path, arguments)
    ctx.state.record_file_change(path)
    try:
        await asyncio.to_thread(_atomic_write, path, new)
    except OSError as exc:
        raise ToolError(f"could not write {path}: {exc.strerror or exc}") from None
    count = outcome.replacements
    how = "" if outcome.match_kind == "exact" else f" (matched {outcome.match_kind})"
    noun = {"replace": "replacement", "append_after": "insertion", "prepend_before": "insertion"}.get(
        arguments.get("mode") or "replace", "change"
    )
    parts = [f"Edited {_display(path, ctx)}: {count} {noun}{'s' if count != 1 else ''}{how}."]
    first, last = outcome.changed_lines[0]
    parts.append(numbered_snippet(outcome.content, first, last))
    if len(outcome.changed_lines) > 1:
        parts.append(f"... and {len(outcome.changed_lines) - 1} more changed place(s).")
    parts += [f"WARNING: {w}" for w in python_warnings(path.name, new)]
    return ToolResult("\n".join(parts), data={"path": str(path), "replacements": count})


async def _describe_edit(arguments: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
    path = resolve_path(arguments.get("path", ""), ctx)
    try:
        old, new, _ = await asyncio.to_thread(_plan_edit, path, arguments)
    except ToolError as exc:
        return ApprovalInfo(preview="", warnings=[f"This edit will fail: {exc}"])
    warnings = python_warnings(path.name, new)
    if str(path) not in ctx.state.files_read:
        warnings.insert(0, "This file was not read first; the edit will be refused.")
    return ApprovalInfo(preview=unified_diff(old, new, _display(path, ctx)), warnings=warnings)


# -- specs ------------------------------------------------------------------------------------------


def _path_subject(arguments: dict[str, Any]) -> str:
    return str(arguments.get("path", ""))


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """Return bash, read, write and edit, unless tools run in a sandbox."""
    if settings.tool_runtime == "sandbox":
        return []

    async def bash_handler(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await _run_bash(arguments, ctx, settings)

    return [
        ToolSpec(
            name="bash",
            description=BASH_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "Shell command to run."},
                    "description": {
                        "type": "string",
                        "description": "A few words on what it does, for the user.",
                    },
                    "work_dir": {
                        "type": "string",
                        "description": "Directory to run in (default: project root).",
                    },
                    "timeout": {
                        "type": "integer",
                        "description": f"Seconds before it is killed (default {settings.bash_timeout_s}, "
                        f"max {MAX_TIMEOUT_S}).",
                    },
                },
                "required": ["command"],
            },
            handler=bash_handler,
            risk=Risk.EXEC,
            subject=lambda arguments: str(arguments.get("command", "")),
            undoable=False,
        ),
        ToolSpec(
            name="read",
            description=READ_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "path": {
                        "type": "string",
                        "description": "File path, absolute or relative to the project.",
                    },
                    "offset": {"type": "integer", "description": "First line to show (1-based)."},
                    "limit": {
                        "type": "integer",
                        "description": f"Lines to show (default {DEFAULT_READ_LINES}).",
                    },
                },
                "required": ["path"],
            },
            handler=_read,
            risk=Risk.READ,
            subject=_path_subject,
            read_only=True,
            undoable=False,
        ),
        ToolSpec(
            name="write",
            description=WRITE_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "path": {
                        "type": "string",
                        "description": "File path, absolute or relative to the project.",
                    },
                    "content": {"type": "string", "description": "The complete new file content."},
                },
                "required": ["path", "content"],
            },
            handler=_write,
            risk=Risk.EDIT,
            subject=_path_subject,
            describe=_describe_write,
        ),
        ToolSpec(
            name="edit",
            description=EDIT_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to change."},
                    "old_str": {"type": "string", "description": "Text to find, copied from the file."},
                    "new_str": {"type": "string", "description": "Replacement (or text to insert)."},
                    "replace_all": {"type": "boolean", "description": "Change every match (default false)."},
                    "mode": {"type": "string", "enum": list(EDIT_MODES), "description": "Default replace."},
                },
                "required": ["path", "old_str", "new_str"],
            },
            handler=_edit,
            risk=Risk.EDIT,
            subject=_path_subject,
            describe=_describe_edit,
        ),
    ]
