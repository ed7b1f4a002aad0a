"""plan_tool: the agent's visible todo list, replaced whole on every call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_intern.core.events import PlanItem, PlanUpdate
from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec

if TYPE_CHECKING:
    from ml_intern.config import Settings

STATUSES = ("pending", "in_progress", "completed")
_MARKS = {"completed": "[x]", "in_progress": "[~]", "pending": "[ ]"}

PLAN_DESCRIPTION = (
    "Show the user your plan as a todo list. Send the complete list every time (it replaces the previous one). "
    "Each item has an id, a short imperative content, and a status: pending, in_progress or completed. "
    "Use it for tasks with three or more steps; keep one item in_progress and mark items completed as soon as "
    "they are done."
)


def validate_todos(todos: Any) -> list[dict[str, str]]:
    """Return the todos as clean dicts, or raise ToolError listing every problem."""
    if not isinstance(todos, list):
        raise ToolError(
            f"todos must be a list of {{id, content, status}} objects, got {type(todos).__name__}. "
            "Call plan_tool again with the full list."
        )
    problems: list[str] = []
    items: list[dict[str, str]] = []
    seen: set[str] = set()
    for number, todo in enumerate(todos, start=1):
        if not isinstance(todo, dict):
            problems.append(f"item {number} is a {type(todo).__name__}, not an object")
            continue
        item_problems = []
        raw_id = todo.get("id")
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()) or isinstance(raw_id, bool):
            item_problems.append("missing 'id'")
        elif not isinstance(raw_id, (str, int)):
            item_problems.append("'id' must be a string")
        content = todo.get("content")
        if not isinstance(content, str) or not content.strip():
            item_problems.append("missing 'content'")
        status = todo.get("status")
        if status not in STATUSES:
            got = "missing" if status is None else repr(status)
            item_problems.append(f"'status' is {got}; use one of {', '.join(STATUSES)}")
        if item_problems:
            problems.append(f"item {number}: " + "; ".join(item_problems))
            continue
        item_id = str(raw_id).strip()
        if item_id in seen:
            problems.append(f"item {number}: id {item_id!r} is used twice")
            continue
        seen.add(item_id)
        items.append({"id": item_id, "content": str(content).strip(), "status": str(status)})
    if problems:
        raise ToolError(
            "the plan was not updated: "
            + ". ".join(problems)
            + ". Call plan_tool again with the full, corrected list."
        )
    return items


def render_plan(items: list[dict[str, str]]) -> str:
    """Return the plan as `[x]`/`[~]`/`[ ]` lines and a `k/n done` count."""
    if not items:
        return "Plan cleared."
    lines = [f"{_MARKS[item['status']]} {item['id']}. {item['content']}" for item in items]
    done = sum(item["status"] == "completed" for item in items)
    return "Plan updated:\n" + "\n".join(lines) + f"\n{done}/{len(items)} done"


async def _plan_tool(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    items = validate_todos(arguments.get("todos"))
    ctx.state.plan = items
    ctx.emit(PlanUpdate(plan=[PlanItem(**item) for item in items]))
    return ToolResult(render_plan(items), data={"plan": items})


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """Return plan_tool."""
    return [
        ToolSpec(
            name="plan_tool",
            description=PLAN_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "todos": {
                        "type": "array",
                        "description": "The whole plan, in order.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "content": {"type": "string"},
                                "status": {"type": "string", "enum": list(STATUSES)},
                            },
                            "required": ["id", "content", "status"],
                        },
                    }
                },
                "required": ["todos"],
            },
            handler=_plan_tool,
            risk=Risk.READ,
            read_only=False,
            undoable=False,
        )
    ]
