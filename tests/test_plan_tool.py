"""plan_tool keeps the session's todo list, tells front ends, and explains bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ml_intern.config import Settings
from ml_intern.core.events import PlanUpdate
from ml_intern.core.tools import Risk, SimpleSessionState, ToolContext, ToolError, ToolResult, ToolRouter
from ml_intern.tools.plan import tool_specs


def _setup(tmp_path: Path) -> tuple[ToolRouter, ToolContext, list[Any]]:
    events: list[Any] = []
    ctx = ToolContext("plan_tool", "call_plan", events.append, SimpleSessionState(), tmp_path, Settings())
    return ToolRouter(tool_specs(Settings())), ctx, events


async def _call(router: ToolRouter, ctx: ToolContext, todos: Any) -> ToolResult:
    result, _ = await router.call("plan_tool", {"todos": todos}, ctx)
    return result


async def test_plan_is_stored_emitted_and_summarised(tmp_path: Path) -> None:
    router, ctx, events = _setup(tmp_path)
    todos = [
        {"id": "1", "content": "Inspect the dataset", "status": "completed"},
        {"id": "2", "content": "Write train.py", "status": "in_progress"},
        {"id": 3, "content": "Launch the job", "status": "pending"},
    ]
    result = await _call(router, ctx, todos)
    assert result.success
    assert result.output == (
        "Plan updated:\n[x] 1. Inspect the dataset\n[~] 2. Write train.py\n[ ] 3. Launch the job\n1/3 done"
    )
    assert ctx.state.plan == [
        {"id": "1", "content": "Inspect the dataset", "status": "completed"},
        {"id": "2", "content": "Write train.py", "status": "in_progress"},
        {"id": "3", "content": "Launch the job", "status": "pending"},
    ]
    [event] = events
    assert isinstance(event, PlanUpdate)
    assert [(item.id, item.status) for item in event.plan] == [
        ("1", "completed"),
        ("2", "in_progress"),
        ("3", "pending"),
    ]


async def test_each_call_replaces_the_whole_plan(tmp_path: Path) -> None:
    router, ctx, events = _setup(tmp_path)
    await _call(router, ctx, [{"id": "a", "content": "one", "status": "pending"}])
    result = await _call(router, ctx, [{"id": "b", "content": "two", "status": "completed"}])
    assert ctx.state.plan == [{"id": "b", "content": "two", "status": "completed"}]
    assert result.output.endswith("1/1 done") and len(events) == 2
    cleared = await _call(router, ctx, [])
    assert cleared.success and ctx.state.plan == [] and events[-1].plan == []


async def test_invalid_items_are_all_reported_and_nothing_changes(tmp_path: Path) -> None:
    router, ctx, events = _setup(tmp_path)
    await _call(router, ctx, [{"id": "keep", "content": "kept", "status": "pending"}])
    bad = [
        {"id": "1", "content": "fine", "status": "pending"},
        {"id": "2", "status": "done"},
        "just text",
        {"content": "no id", "status": "pending"},
        {"id": "1", "content": "duplicate", "status": "pending"},
    ]
    result = await _call(router, ctx, bad)
    assert not result.success
    text = result.output
    assert "item 2: missing 'content'; 'status' is 'done'; use one of pending, in_progress, completed" in text
    assert (
        "item 3 is a str" in text
        and "item 4: missing 'id'" in text
        and "item 5: id '1' is used twice" in text
    )
    assert "Call plan_tool again" in text
    assert ctx.state.plan == [{"id": "keep", "content": "kept", "status": "pending"}] and len(events) == 1


async def test_todos_must_be_a_list(tmp_path: Path) -> None:
    router, ctx, events = _setup(tmp_path)
    result, _ = await router.call("plan_tool", {"todos": {"id": "1"}}, ctx)
    assert not result.success and "must be of type array" in result.output and events == []
    with pytest.raises(ToolError, match="todos must be a list"):
        await tool_specs(Settings())[0].handler({"todos": "1. do it"}, ctx)


def test_spec_shape() -> None:
    [spec] = tool_specs(Settings())
    assert spec.name == "plan_tool" and spec.risk_for({}) is Risk.READ
    item = spec.parameters["properties"]["todos"]["items"]
    assert item["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]
    assert len(spec.description.split()) <= 120
