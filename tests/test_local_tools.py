"""bash, read, write and edit on the local machine, called the way the agent calls them."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ml_intern.config import Settings
from ml_intern.core.events import ToolLog
from ml_intern.core.tools import Risk, SimpleSessionState, ToolContext, ToolError, ToolResult, ToolRouter
from ml_intern.tools import local
from ml_intern.tools.local import MAX_OUTPUT_CHARS, tool_specs


@dataclass
class Harness:
    """A ToolContext in a temporary project, with every emitted event timestamped."""

    workdir: Path
    state: SimpleSessionState = field(default_factory=SimpleSessionState)
    events: list[tuple[float, Any]] = field(default_factory=list)
    settings: Settings = field(default_factory=lambda: Settings(bash_timeout_s=30))

    def __post_init__(self) -> None:
        self.specs = {spec.name: spec for spec in tool_specs(self.settings)}

    def ctx(self, tool: str) -> ToolContext:
        return ToolContext(
            tool_name=tool,
            tool_call_id=f"call_{tool}",
            emit=lambda event: self.events.append((time.monotonic(), event)),
            state=self.state,
            workdir=self.workdir,
            config=self.settings,
        )

    async def call(self, tool: str, **arguments: Any) -> ToolResult:
        result = await self.specs[tool].handler(arguments, self.ctx(tool))
        return result if isinstance(result, ToolResult) else ToolResult(result)

    async def routed(self, tool: str, **arguments: Any) -> ToolResult:
        """Call through the router, as the agent does: ToolErrors become error results."""
        result, _ = await ToolRouter(self.specs.values()).call(tool, arguments, self.ctx(tool))
        return result

    def logs(self) -> list[str]:
        return [event.log for _, event in self.events if isinstance(event, ToolLog)]


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    project = tmp_path / "project"
    project.mkdir()
    return Harness(project)


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# -- specs ------------------------------------------------------------------------------------------


def test_specs_follow_the_runtime_and_stay_short() -> None:
    assert tool_specs(Settings(tool_runtime="sandbox")) == []
    specs = {spec.name: spec for spec in tool_specs(Settings())}
    assert list(specs) == ["bash", "read", "write", "edit"]
    assert specs["bash"].risk_for({"command": "ls"}) is Risk.EXEC
    assert specs["bash"].subject_for({"command": "python train.py --lr 1e-4"}) == "python train.py --lr 1e-4"
    assert specs["read"].read_only and specs["read"].risk_for({}) is Risk.READ
    assert specs["write"].risk_for({}) is Risk.EDIT and specs["edit"].subject_for({"path": "a.py"}) == "a.py"
    assert specs["edit"].parameters["required"] == ["path", "old_str", "new_str"]
    for spec in specs.values():
        assert 30 <= len(spec.description.split()) <= 120, spec.name


# -- bash -------------------------------------------------------------------------------------------


async def test_bash_merges_streams_strips_ansi_and_records_side_effect(h: Harness) -> None:
    result = await h.call("bash", command="echo out; echo err >&2; printf '\\033[1;31mred\\033[0m\\n'")
    assert result.success and result.output == "out\nerr\nred"
    assert h.state.side_effects == ["bash: echo out; echo err >&2; printf '\\033[1;31mred\\033[0m\\n'"]


async def test_bash_reports_exit_code_and_empty_output(h: Harness) -> None:
    failed = await h.call("bash", command="echo boom; exit 3")
    assert not failed.success and failed.output == "boom\nexit code 3"
    quiet = await h.call("bash", command="true")
    assert quiet.success and quiet.output == "(no output)"


async def test_bash_runs_in_work_dir_relative_to_project(h: Harness) -> None:
    (h.workdir / "sub").mkdir()
    result = await h.call("bash", command="pwd", work_dir="sub")
    assert result.output == str((h.workdir / "sub").resolve())
    default = await h.call("bash", command="pwd")
    assert default.output == str(h.workdir)
    missing = await h.routed("bash", command="pwd", work_dir="nope")
    assert not missing.success and "does not exist" in missing.output


async def test_bash_streams_lines_live_in_batched_log_events(h: Harness) -> None:
    started = time.monotonic()
    result = await h.call("bash", command="echo first; sleep 0.6; echo second")
    finished = time.monotonic()
    logs = [(at, event.log) for at, event in h.events if isinstance(event, ToolLog)]
    first_at = next(at for at, text in logs if "first" in text)
    assert first_at - started < 0.45 < finished - started  # seen while the command was still running
    assert "second" in logs[-1][1] and result.output == "first\nsecond"
    assert all(event.tool_call_id == "call_bash" for _, event in h.events)


async def test_bash_log_events_are_rate_limited_and_complete(h: Harness) -> None:
    started = time.monotonic()
    await h.call("bash", command="for i in $(seq 1 300); do echo line $i; sleep 0.003; done")
    duration = time.monotonic() - started
    logs = h.logs()
    assert len(logs) <= duration * 10 + 3, (len(logs), duration)
    assert "\n".join(logs).split("\n") == [f"line {i}" for i in range(1, 301)]


async def test_bash_timeout_kills_the_process_group(h: Harness, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    result = await h.call("bash", command=f"sleep 30 & echo $! > {pid_file}; echo started; wait", timeout=1)
    assert time.monotonic() - started < 3
    assert not result.success and result.data["timed_out"]
    assert "started" in result.output and "timed out after 1s" in result.output and "nohup" in result.output
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 1
    while _alive(child) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not _alive(child)


async def test_bash_timeout_escalates_to_sigkill(h: Harness) -> None:
    started = time.monotonic()
    result = await h.call("bash", command="trap '' TERM; echo stubborn; sleep 30", timeout=1)
    assert time.monotonic() - started < 2.5
    assert result.data["timed_out"] and "stubborn" in result.output


async def test_bash_cancel_kills_everything_within_half_a_second(h: Harness, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    task = asyncio.create_task(h.call("bash", command=f"sleep 30 & echo $! $$ > {pid_file}; wait"))
    deadline = time.monotonic() + 5
    while not (pid_file.exists() and len(pid_file.read_text().split()) == 2) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    pids = [int(p) for p in pid_file.read_text().split()]
    assert all(_alive(pid) for pid in pids)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    while any(_alive(pid) for pid in pids) and time.monotonic() - cancelled_at < 0.5:
        await asyncio.sleep(0.01)
    assert not any(_alive(pid) for pid in pids), "processes survived the interrupt"
    assert time.monotonic() - cancelled_at < 0.5


async def test_bash_cancelled_while_the_shell_starts_still_returns_at_once(h: Harness, tmp_path: Path) -> None:
    # Cancelling inside create_subprocess_shell used to wait for `sleep 30` to close the pipe (Python 3.11).
    pid_file = tmp_path / "pid"
    task = asyncio.create_task(h.call("bash", command=f"echo $$ > {pid_file}; sleep 30; true"))
    await asyncio.sleep(0)  # the handler is now inside process creation
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 0.5
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text().strip()):
        await asyncio.sleep(0.02)
    if pid_file.exists() and pid_file.read_text().strip():
        pid = int(pid_file.read_text())
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not _alive(pid), "the shell started after the interrupt survived it"


async def test_bash_returns_when_a_background_job_holds_the_pipe(h: Harness, tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    started = time.monotonic()
    result = await h.call("bash", command=f"sleep 5 & echo $! > {pid_file}; echo launched")
    assert time.monotonic() - started < 2
    assert result.success and result.output.startswith("launched") and "redirect" in result.output
    background = int(pid_file.read_text())
    assert _alive(background)  # a normal exit leaves background jobs running
    os.kill(background, 9)


async def test_bash_long_output_keeps_head_and_tail_and_spills_the_rest(h: Harness, tmp_path: Path) -> None:
    result = await h.call("bash", command="seq 1 30000")
    full = "\n".join(str(i) for i in range(1, 30001))
    assert len(result.output) < MAX_OUTPUT_CHARS + 400
    assert result.output.startswith("1\n2\n3\n") and result.output.endswith("29999\n30000")
    spill = Path(result.data["full_output_path"])
    assert str(spill) in result.output and "characters omitted" in result.output
    assert spill.is_relative_to(tmp_path / "state") and spill.read_text().rstrip("\n") == full
    head, tail = result.output.split("characters omitted")
    assert len(head) < len(tail)  # the end (where errors are) gets most of the budget


async def test_bash_keeps_every_byte_of_a_fast_flood(h: Harness) -> None:
    result = await h.call("bash", command="seq 1 400000")
    assert result.success and result.output.endswith("399999\n400000") and "background" not in result.output
    spill = Path(result.data["full_output_path"]).read_text().split("\n")
    assert spill[0] == "1" and spill[-2] == "400000" and len(spill) == 400001


async def test_bash_collapses_progress_bar_redraws(h: Harness) -> None:
    result = await h.call("bash", command="printf '10%%\\r50%%\\r100%%\\ndone\\n'")
    assert result.output == "100%\ndone"


async def test_bash_never_blocks_the_event_loop(h: Harness) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    await h.call("bash", command="sleep 0.5")
    task.cancel()
    assert ticks >= 15


# -- read -------------------------------------------------------------------------------------------


async def test_read_numbers_lines_and_records_the_file(h: Harness) -> None:
    (h.workdir / "notes.txt").write_text("alpha\nbeta\n\tgamma\n")
    result = await h.call("read", path="notes.txt")
    assert result.output == "     1\talpha\n     2\tbeta\n     3\t\tgamma"
    assert str((h.workdir / "notes.txt").resolve()) in h.state.files_read


async def test_read_offset_and_limit_page_through_a_file(h: Harness) -> None:
    (h.workdir / "big.txt").write_text("".join(f"row {i}\n" for i in range(1, 101)))
    result = await h.call("read", path=str(h.workdir / "big.txt"), offset=10, limit=3)
    lines = result.output.split("\n")
    assert lines[:3] == ["    10\trow 10", "    11\trow 11", "    12\trow 12"]
    assert "showing lines 10-12 of 100" in result.output and "offset=13" in result.output
    past = await h.routed("read", path="big.txt", offset=500)
    assert not past.success and "past the end" in past.output and "100 lines" in past.output


async def test_read_default_limit_and_long_lines(h: Harness) -> None:
    (h.workdir / "long.txt").write_text("x" * 5000 + "\n" + "".join(f"{i}\n" for i in range(3000)))
    result = await h.call("read", path="long.txt")
    first = result.output.split("\n")[0]
    assert first == "     1\t" + "x" * 4000 + "..."
    assert "  2000\t1998" in result.output and "  2001\t" not in result.output
    assert "offset=2001" in result.output


async def test_read_reports_missing_binary_and_directory(h: Harness) -> None:
    (h.workdir / "train.py").write_text("print(1)\n")
    missing = await h.routed("read", path="trian.py")
    assert not missing.success and "does not exist" in missing.output and "train.py" in missing.output

    (h.workdir / "model.bin").write_bytes(b"\x00\x01\x02" * 1000)
    binary = await h.routed("read", path="model.bin")
    assert not binary.success and "binary" in binary.output and "3,000 bytes" in binary.output

    (h.workdir / "data").mkdir()
    (h.workdir / "data" / "a.csv").write_text("x")
    (h.workdir / "data" / "nested").mkdir()
    directory = await h.routed("read", path="data")
    assert not directory.success and "directory" in directory.output
    assert "nested/" in directory.output and "a.csv" in directory.output
    assert h.state.files_read == set()


async def test_read_empty_file(h: Harness) -> None:
    (h.workdir / "empty.txt").write_text("")
    result = await h.call("read", path="empty.txt")
    assert result.success and "empty" in result.output


# -- write ------------------------------------------------------------------------------------------


async def test_write_creates_parents_and_counts_as_read(h: Harness) -> None:
    result = await h.call("write", path="src/pkg/mod.py", content="x = 1\n")
    target = h.workdir / "src" / "pkg" / "mod.py"
    assert target.read_text() == "x = 1\n" and result.success and "Created" in result.output
    assert h.state.changed_files == [target.resolve()]
    again = await h.call("write", path="src/pkg/mod.py", content="x = 2\n")
    assert again.success and target.read_text() == "x = 2\n"


async def test_write_refuses_to_overwrite_an_unread_file(h: Harness) -> None:
    target = h.workdir / "config.yaml"
    target.write_text("keep: me\n")
    refused = await h.routed("write", path="config.yaml", content="lost\n")
    assert not refused.success and "read config.yaml before overwriting" in refused.output
    assert target.read_text() == "keep: me\n" and h.state.changed_files == []
    await h.call("read", path="config.yaml")
    allowed = await h.call("write", path="config.yaml", content="new: value\n")
    assert allowed.success and target.read_text() == "new: value\n"


async def test_write_snapshots_before_changing_the_file(h: Harness) -> None:
    target = h.workdir / "a.txt"
    target.write_text("before\n")
    seen: list[str] = []

    class SnapshottingState(SimpleSessionState):
        def record_file_change(self, path: Path) -> None:
            seen.append(Path(path).read_text())
            super().record_file_change(path)

    h.state = SnapshottingState(files_read={str(target.resolve())})
    await h.call("write", path="a.txt", content="after\n")
    assert seen == ["before\n"] and target.read_text() == "after\n"


async def test_write_is_atomic_and_keeps_the_file_mode(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    target = h.workdir / "run.sh"
    target.write_text("echo old\n")
    target.chmod(0o750)
    await h.call("read", path="run.sh")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local.os, "replace", broken_replace)
    failed = await h.routed("write", path="run.sh", content="echo new\n")
    assert not failed.success and "No space left" in failed.output
    assert target.read_text() == "echo old\n"
    assert sorted(p.name for p in h.workdir.iterdir()) == ["run.sh"]  # no temp file left behind
    monkeypatch.undo()
    await h.call("write", path="run.sh", content="echo new\n")
    assert target.read_text() == "echo new\n" and (target.stat().st_mode & 0o777) == 0o750


async def test_write_warns_about_python_problems_but_still_writes(h: Harness) -> None:
    broken = await h.call("write", path="bad.py", content="def f(:\n    pass\n")
    assert broken.success and "syntax error at line 1" in broken.output
    assert (h.workdir / "bad.py").read_text() == "def f(:\n    pass\n"
    script = "from trl import SFTConfig\nargs = SFTConfig(output_dir='out')\n"
    training = await h.call("write", path="train.py", content=script)
    assert "SFTConfig is used without push_to_hub" in training.output
    pushed = await h.call(
        "write", path="train2.py", content=script.replace("'out'", "'out', push_to_hub=True")
    )
    assert "WARNING" not in pushed.output
    plain = await h.call("write", path="notes.md", content="TrainingArguments(\n")
    assert "WARNING" not in plain.output


async def test_write_preview_is_a_unified_diff(h: Harness) -> None:
    spec = h.specs["write"]
    fresh = await spec.describe({"path": "new.py", "content": "a = 1\nb = 2\n"}, h.ctx("write"))
    assert "+++ b/new.py" in fresh.preview and "+a = 1" in fresh.preview and "+b = 2" in fresh.preview
    (h.workdir / "old.py").write_text("a = 1\nb = 2\n")
    await h.call("read", path="old.py")
    changed = await spec.describe({"path": "old.py", "content": "a = 1\nb = 3\n"}, h.ctx("write"))
    assert "-b = 2" in changed.preview and "+b = 3" in changed.preview and " a = 1" in changed.preview
    assert (h.workdir / "old.py").read_text() == "a = 1\nb = 2\n"
    huge = await spec.describe({"path": "huge.txt", "content": "line\n" * 5000}, h.ctx("write"))
    assert len(huge.preview) < 25_000 and "more diff lines" in huge.preview


# -- edit -------------------------------------------------------------------------------------------


async def _prepared(h: Harness, name: str, content: str) -> Path:
    target = h.workdir / name
    target.write_text(content)
    await h.call("read", path=name)
    return target


async def test_edit_replaces_an_exact_match_and_shows_the_region(h: Harness) -> None:
    target = await _prepared(h, "app.py", "import os\n\n\ndef main():\n    return 1\n")
    result = await h.call("edit", path="app.py", old_str="    return 1", new_str="    return 2")
    assert target.read_text() == "import os\n\n\ndef main():\n    return 2\n"
    assert "1 replacement." in result.output and "     5\t    return 2" in result.output
    assert h.state.changed_files == [target.resolve()]


async def test_edit_must_read_first(h: Harness) -> None:
    target = h.workdir / "unseen.py"
    target.write_text("x = 1\n")
    refused = await h.routed("edit", path="unseen.py", old_str="x = 1", new_str="x = 2")
    assert not refused.success and "read unseen.py before editing" in refused.output
    assert target.read_text() == "x = 1\n"


async def test_edit_tolerates_trailing_whitespace(h: Harness) -> None:
    target = await _prepared(h, "a.py", "x = 1   \ny = 2\t\nz = 3\n")
    result = await h.call("edit", path="a.py", old_str="x = 1\ny = 2\n", new_str="x = 10\ny = 20\n")
    assert target.read_text() == "x = 10\ny = 20\nz = 3\n"
    assert "trailing whitespace" in result.output


async def test_edit_tolerates_wrong_indentation_and_reindents(h: Harness) -> None:
    target = await _prepared(h, "m.py", "class A:\n    def f(self):\n        return 1\n")
    old = "def f(self):\n    return 1"
    new = "def f(self):\n    value = 2\n    return value"
    result = await h.call("edit", path="m.py", old_str=old, new_str=new)
    assert target.read_text() == "class A:\n    def f(self):\n        value = 2\n        return value\n"
    assert "indentation" in result.output


async def test_edit_tolerates_smart_quotes_and_dashes(h: Harness) -> None:
    target = await _prepared(h, "s.py", 'print("it\'s done")  # step - one\n')
    result = await h.call(
        "edit",
        path="s.py",
        old_str="print(\u201cit\u2019s done\u201d)  # step \u2013 one",
        new_str="print('ok')",
    )
    assert target.read_text() == "print('ok')\n" and "unicode" in result.output


async def test_edit_ambiguity_and_replace_all(h: Harness) -> None:
    target = await _prepared(h, "c.py", "lr = 1e-3\nwd = 0\nlr = 1e-3\n")
    ambiguous = await h.routed("edit", path="c.py", old_str="lr = 1e-3", new_str="lr = 5e-4")
    assert not ambiguous.success and "matches 2 places (lines 1, 3)" in ambiguous.output
    assert target.read_text() == "lr = 1e-3\nwd = 0\nlr = 1e-3\n"
    every = await h.call("edit", path="c.py", old_str="lr = 1e-3", new_str="lr = 5e-4", replace_all=True)
    assert target.read_text() == "lr = 5e-4\nwd = 0\nlr = 5e-4\n" and "2 replacements" in every.output


async def test_edit_not_found_shows_the_closest_lines(h: Harness) -> None:
    target = await _prepared(h, "t.py", "def train(model, data):\n    model.fit(data, epochs=3)\n")
    missing = await h.routed(
        "edit", path="t.py", old_str="model.fit(data, epochs=5)", new_str="model.fit(data)"
    )
    assert not missing.success and "not found" in missing.output
    assert "     2\t    model.fit(data, epochs=3)" in missing.output
    assert target.read_text() == "def train(model, data):\n    model.fit(data, epochs=3)\n"


async def test_edit_rejects_a_no_op(h: Harness) -> None:
    await _prepared(h, "n.py", "a = 1\n")
    same = await h.routed("edit", path="n.py", old_str="a = 1", new_str="a = 1")
    assert not same.success and "identical" in same.output


async def test_edit_modes_insert_whole_lines(h: Harness) -> None:
    target = await _prepared(h, "imports.py", "import os\nimport sys\n")
    await h.call("edit", path="imports.py", old_str="import os", new_str="import re", mode="append_after")
    assert target.read_text() == "import os\nimport re\nimport sys\n"
    await h.call("edit", path="imports.py", old_str="import os", new_str="import abc", mode="prepend_before")
    assert target.read_text() == "import abc\nimport os\nimport re\nimport sys\n"
    await h.call(
        "edit", path="imports.py", old_str="import sys\n", new_str="import json", mode="append_after"
    )
    assert target.read_text() == "import abc\nimport os\nimport re\nimport sys\nimport json\n"


async def test_edit_keeps_windows_line_endings(h: Harness) -> None:
    target = h.workdir / "w.txt"
    target.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await h.call("read", path="w.txt")
    await h.call("edit", path="w.txt", old_str="one\ntwo", new_str="one\n2")
    assert target.read_bytes() == b"one\r\n2\r\nthree\r\n"


async def test_edit_refuses_non_utf8_files_instead_of_corrupting_them(h: Harness) -> None:
    target = h.workdir / "latin.txt"
    target.write_bytes("caf\u00e9 = 1\n".encode("latin-1"))
    await h.call("read", path="latin.txt")
    refused = await h.routed("edit", path="latin.txt", old_str="= 1", new_str="= 2")
    assert not refused.success and "not UTF-8" in refused.output
    assert target.read_bytes() == "caf\u00e9 = 1\n".encode("latin-1")


async def test_edit_warns_on_broken_python(h: Harness) -> None:
    await _prepared(h, "p.py", "def f():\n    return 1\n")
    result = await h.call("edit", path="p.py", old_str="    return 1", new_str="    return (1")
    assert result.success and "syntax error" in result.output


async def test_edit_preview_is_a_diff_and_writes_nothing(h: Harness) -> None:
    target = await _prepared(h, "d.py", "alpha = 1\nbeta = 2\n")
    spec = h.specs["edit"]
    info = await spec.describe({"path": "d.py", "old_str": "beta = 2", "new_str": "beta = 3"}, h.ctx("edit"))
    assert "-beta = 2" in info.preview and "+beta = 3" in info.preview
    assert target.read_text() == "alpha = 1\nbeta = 2\n" and h.state.changed_files == []
    bad = await spec.describe({"path": "d.py", "old_str": "gamma", "new_str": "delta"}, h.ctx("edit"))
    assert bad.preview == "" and "will fail" in bad.warnings[0]


async def test_handler_errors_are_tool_errors(h: Harness) -> None:
    with pytest.raises(ToolError):
        await h.call("read", path="")
