"""Tool specs, the per-call context handed to handlers, and the router that runs them safely."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ml_intern.core.events import Event


class Risk(enum.IntEnum):
    """How much harm a call can do; the approval policy maps risk and mode to ask or run."""

    READ = 0  # looks at things, local or remote
    EDIT = 1  # changes files on the user's machine (write, edit)
    EXEC = 2  # runs arbitrary code on the user's machine (bash)
    EXTERNAL = 3  # third-party code with unknown effects (MCP tools)
    COST = 4  # spends money (GPU jobs, paid sandboxes)
    DESTRUCTIVE = 5  # deletes or publishes remote state (uploads, deletes, merges, repo changes)
    ALWAYS_ASK = 6  # unbounded cost (scheduled jobs): asks even in yolo


@dataclass
class ToolResult:
    """What a handler returns: the text the model reads and whether the call succeeded."""

    output: str
    success: bool = True
    # Structured extras for front ends (never sent to the model).
    data: dict[str, Any] = field(default_factory=dict)


class ToolError(Exception):
    """Raise from a handler to return a clean error result (message shown to the model as is)."""


@dataclass
class ApprovalInfo:
    """What the approval modal shows about one call."""

    preview: str = ""
    estimated_cost_usd: float | None = None
    warnings: list[str] = field(default_factory=list)


class SessionState(Protocol):
    """Per-session state that tools may read and change (one instance per conversation)."""

    files_read: set[str]
    plan: list[dict[str, Any]]

    def record_file_change(self, path: Path) -> None:
        """Snapshot a file before a tool changes it, so undo can restore it."""

    def record_side_effect(self, description: str) -> None:
        """Note an effect undo cannot reverse (a shell command, a remote operation)."""


class Emitter(Protocol):
    """Anything that accepts events (the agent's event queue)."""

    def __call__(self, event: Event) -> None: ...


@dataclass
class ToolContext:
    """Everything a handler may use beyond its arguments."""

    tool_name: str
    tool_call_id: str
    emit: Callable[[Event], None]
    state: Any  # SessionState
    workdir: Path
    config: Any = None  # ml_intern.config.Settings
    # Services registered by the agent (hf api factory, job watcher, sub-agent runner...).
    services: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None

    def log(self, text: str) -> None:
        """Emit a `tool_log` line for this call."""
        from ml_intern.core.events import ToolLog

        self.emit(ToolLog(tool=self.tool_name, log=text, tool_call_id=self.tool_call_id, agent_id=self.agent_id))


# Every handler is `async def handler(arguments: dict, ctx: ToolContext) -> ToolResult | str`.
Handler = Callable[[dict[str, Any], "ToolContext"], Awaitable[ToolResult | str]]


@dataclass
class ToolSpec:
    """A tool the model can call: schema, handler, and how risky a given call is."""

    name: str
    description: str
    parameters: dict[str, Any]
    handler: Handler
    # Risk of a call given its arguments; a constant for most tools.
    risk: Risk | Callable[[dict[str, Any]], Risk] = Risk.READ
    # The string approval rules match against (bash: the command; write/edit: the path).
    subject: Callable[[dict[str, Any]], str] | None = None
    # Extra information for the approval modal (diff, cost, warnings); may be async.
    describe: Callable[[dict[str, Any], ToolContext], Awaitable[ApprovalInfo] | ApprovalInfo] | None = None
    # Read-only tools may be handed to sub-agents.
    read_only: bool = False
    # Where the tool comes from: "builtin" or "mcp:<server>".
    source: str = "builtin"
    # Whether the tool changes local files that undo can restore.
    undoable: bool = True

    def risk_for(self, arguments: dict[str, Any]) -> Risk:
        """Return the risk of this call."""
        return self.risk(arguments) if callable(self.risk) else self.risk

    def subject_for(self, arguments: dict[str, Any]) -> str:
        """Return the text approval rules match against."""
        if self.subject is not None:
            try:
                return str(self.subject(arguments))
            except Exception:
                return ""
        return json.dumps(arguments, sort_keys=True, ensure_ascii=False)

    def llm_schema(self) -> dict[str, Any]:
        """Return the OpenAI function-calling schema."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ParsedCall:
    """A tool call from the model after argument parsing."""

    tool_call_id: str
    name: str
    raw_arguments: str
    arguments: dict[str, Any] | None
    error: str | None = None  # set when arguments are unusable or the tool is unknown


def parse_tool_call(tool_call_id: str, name: str, raw_arguments: str | None, known: Iterable[str]) -> ParsedCall:
    """Parse one call's JSON arguments; anything unusable becomes an error the model can read."""
    raw = raw_arguments or ""
    known_set = set(known)
    if name not in known_set:
        hint = ", ".join(sorted(known_set)[:40])
        return ParsedCall(tool_call_id, name, raw, None, f"ERROR: unknown tool '{name}'. Available tools: {hint}.")
    if not raw.strip():
        return ParsedCall(tool_call_id, name, raw, {})
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        return ParsedCall(
            tool_call_id,
            name,
            raw,
            None,
            f"ERROR: the arguments for '{name}' were not valid JSON ({exc.msg} at position {exc.pos}), so the call "
            "was NOT executed. Send a single JSON object. For large file contents, split the work into several "
            "smaller write/edit calls.",
        )
    if not isinstance(parsed, dict):
        return ParsedCall(
            tool_call_id,
            name,
            raw,
            None,
            f"ERROR: the arguments for '{name}' must be a JSON object, got {type(parsed).__name__}; "
            "the call was NOT executed.",
        )
    return ParsedCall(tool_call_id, name, raw, parsed)


def validate_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """Check required parameters and basic types; return an error message or None."""
    schema = spec.parameters or {}
    props: dict[str, Any] = schema.get("properties", {})
    missing = [name for name in schema.get("required", []) if name not in arguments]
    if missing:
        return f"ERROR: '{spec.name}' is missing required argument(s): {', '.join(missing)}."
    type_map = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "array": list,
        "object": dict,
    }
    for key, value in arguments.items():
        prop = props.get(key)
        if not prop or value is None:
            continue
        expected = prop.get("type")
        if isinstance(expected, str) and expected in type_map:
            py_type = type_map[expected]
            ok = isinstance(value, py_type) and not (expected in ("integer", "number") and isinstance(value, bool))
            if expected == "integer" and isinstance(value, float) and value.is_integer():
                ok = True
            if not ok:
                return f"ERROR: argument '{key}' of '{spec.name}' must be of type {expected}."
        enum_values = prop.get("enum")
        if enum_values and value not in enum_values:
            return f"ERROR: argument '{key}' of '{spec.name}' must be one of {enum_values}, got {value!r}."
    return None


class ToolRouter:
    """The registry of tools available to one agent, and the safe way to call them."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ToolSpec) -> ToolSpec:
        """Add a tool; an MCP tool whose name clashes is prefixed with its server name."""
        name = spec.name
        if name in self._specs and spec.source.startswith("mcp:"):
            server = spec.source.split(":", 1)[1]
            name = f"{server}__{spec.name}"
            spec = ToolSpec(**{**spec.__dict__, "name": name})
        self._specs[name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove a tool if present."""
        self._specs.pop(name, None)

    def get(self, name: str) -> ToolSpec | None:
        """Return the spec for a tool name."""
        return self._specs.get(name)

    def names(self) -> list[str]:
        """Return every tool name."""
        return list(self._specs)

    def specs(self) -> list[ToolSpec]:
        """Return every spec in registration order."""
        return list(self._specs.values())

    def llm_schemas(self) -> list[dict[str, Any]]:
        """Return the function-calling schemas sent to the model."""
        return [spec.llm_schema() for spec in self._specs.values()]

    def subset(self, names: Iterable[str]) -> ToolRouter:
        """Return a router with only the named tools (for sub-agents)."""
        return ToolRouter(self._specs[n] for n in names if n in self._specs)

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> tuple[ToolResult, float]:
        """Run one tool; exceptions become error results, never escape (cancellation does)."""
        spec = self._specs.get(name)
        started = time.perf_counter()
        if spec is None:
            return ToolResult(f"ERROR: unknown tool '{name}'.", success=False), 0.0
        problem = validate_arguments(spec, arguments)
        if problem:
            return ToolResult(problem, success=False), 0.0
        try:
            result = await spec.handler(arguments, ctx)
        except ToolError as exc:
            result = ToolResult(f"ERROR: {exc}", success=False)
        except TypeError as exc:
            result = ToolResult(f"ERROR: bad arguments for '{name}': {exc}", success=False)
        except Exception as exc:  # a tool bug must not end the turn
            result = ToolResult(f"ERROR: '{name}' failed: {type(exc).__name__}: {exc}", success=False)
        if isinstance(result, str):
            result = ToolResult(result)
        return result, time.perf_counter() - started


@dataclass
class SimpleSessionState:
    """A minimal SessionState for tests and sub-agents: remembers reads, plan, changes and side effects."""

    files_read: set[str] = field(default_factory=set)
    plan: list[dict[str, Any]] = field(default_factory=list)
    changed_files: list[Path] = field(default_factory=list)
    side_effects: list[str] = field(default_factory=list)

    def record_file_change(self, path: Path) -> None:
        """Remember that a file is about to change."""
        self.changed_files.append(path)

    def record_side_effect(self, description: str) -> None:
        """Remember an effect undo cannot reverse."""
        self.side_effects.append(description)
