"""The research sub-agent: its own context, read-only tools plus bash, and the parent's approval policy."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from ml_intern.core import events as ev
from ml_intern.core.llm_types import LLMError, LLMRequest
from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec

if TYPE_CHECKING:
    from ml_intern.config import Settings
    from ml_intern.core.agent import Agent

MAX_RESEARCH_ITERATIONS = 40
# Share of the model's window the sub-agent may fill before it must write up.
RESEARCH_CONTEXT_SHARE = 0.6

RESEARCH_PROMPT = """You are a research assistant for an ML engineer agent. Investigate the task with your tools \
(docs, papers, datasets, GitHub examples, the web, reading files, read-only shell commands) and report back. \
Do not change anything: no writes, uploads or training runs. Prefer primary sources: official docs, the paper, \
working example code. Check that APIs and arguments you cite exist in current versions.

Finish with a compact report for the engineer who asked: the answer first, then the evidence (exact API names, \
arguments, code snippets that work, dataset columns, hyper-parameters with their source), then open questions. \
Cite URLs or file paths for every claim. Keep it under about 800 words."""

DESCRIPTION = (
    "Delegate a research question to a sub-agent with its own context (docs, papers, datasets, GitHub, web, "
    "read-only shell). Use it for broad investigation (e.g. 'current TRL SFTTrainer arguments for packing', "
    "'best recipe from the DPO paper') so your own context stays small. Returns a cited report."
)

# Tools the sub-agent never gets, whatever their flags say.
_EXCLUDED = {"research", "plan_tool", "write", "edit", "notify", "hf_jobs", "sandbox_create", "hf_repo_git"}


def _summary(tool: str, arguments: dict[str, Any]) -> str:
    for key in ("command", "query", "path", "url", "dataset", "repo", "operation", "endpoint"):
        if key in arguments:
            return f"{tool} {str(arguments[key])[:90]}"
    return f"{tool} {json.dumps(arguments, ensure_ascii=False)[:90]}"


class _ParentApprover:
    """Routes the sub-agent's approval requests through the parent agent (its approver or its front end)."""

    def __init__(self, parent: Agent) -> None:
        self.parent = parent

    async def decide(self, items: list[ev.ApprovalItem]) -> list[Any]:
        """Ask exactly as the parent would."""
        for item in items:
            item.reason = f"research sub-agent: {item.reason}".strip()
        answers = await self.parent.request_approval(items)
        return list(answers.values())


def _research_tools(parent: Agent) -> list[str]:
    names = []
    for spec in parent.router.specs():
        if spec.name in _EXCLUDED or spec.source != "builtin":
            continue
        if spec.read_only or spec.name == "bash":
            names.append(spec.name)
    return names


async def _run_research(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    from ml_intern.core.agent import Agent
    from ml_intern.core.loop import run_turn

    parent: Agent | None = ctx.services.get("agent")
    if parent is None:
        raise ToolError("research needs the running agent (internal wiring missing)")
    task = str(arguments.get("task", "")).strip()
    if not task:
        raise ToolError("give the research task in 'task'")
    agent_id = f"research-{uuid.uuid4().hex[:6]}"
    label = task if len(task) <= 60 else task[:59] + "…"
    settings = parent.settings.model_copy(deep=True)
    settings.save_sessions = False
    settings.stream = False
    settings.max_iterations = MAX_RESEARCH_ITERATIONS
    settings.compact_threshold = min(settings.compact_threshold, RESEARCH_CONTEXT_SHARE)
    names = _research_tools(parent)
    approver = parent.approver if parent.approver is not None else _ParentApprover(parent)

    def log(text: str) -> None:
        parent.emit(ev.ToolLog(tool="research", log=text, tool_call_id=ctx.tool_call_id, agent_id=agent_id))

    class SubAgent(Agent):
        """A child agent whose events become progress lines of the parent's research call."""

        def emit(self, event: ev.Event) -> None:
            if isinstance(event, ev.ToolCall):
                log(f"▸ {_summary(event.tool, event.arguments)}")
            elif isinstance(event, ev.ToolOutput) and not event.success:
                log(f"  ✗ {event.tool}: {' '.join(event.output.split())[:160]}")
            elif isinstance(event, ev.Retrying):
                log(f"  retrying in {event.delay_s:.0f}s: {event.reason}")
            elif isinstance(event, (ev.Error, ev.SessionTerminated)):
                log(f"  error: {getattr(event, 'error', None) or getattr(event, 'message', '')}")
            elif isinstance(event, ev.Compacted):
                log("  (research context compacted)")
            elif isinstance(event, ev.Usage):
                parent.session_tokens += event.total_tokens
                parent.session_cost_usd += event.cost_usd
                parent.spent_usd += event.cost_usd

    child = SubAgent(
        settings,
        tools=parent.router.subset(names),
        llm=parent.llm,
        approver=approver,
        workdir=parent.workdir,
        headless=True,
        services=parent.services,
    )
    child.context_window = parent.context_window
    child.state.files_read = set(parent.state.files_read)
    child.history.set_system_prompt(
        RESEARCH_PROMPT + f"\n\nWorking directory: {parent.workdir}\nTools: {', '.join(names)}"
    )
    log(f"Researching: {label}")
    context = str(arguments.get("context") or "").strip()
    prompt = task + (f"\n\nContext from the engineer:\n{context}" if context else "")
    await run_turn(child, prompt)
    report = _final_report(child)
    if child.last_turn_outcome == "iteration_limit" or (not report and child.last_turn_outcome != "error"):
        report = await _force_write_up(child)
    log("Research complete.")
    if not report:
        return ToolResult("Research failed: the sub-agent produced no report (see its log).", success=False)
    return ToolResult(report)


def _final_report(child: Agent) -> str:
    for message in reversed(child.history.messages):
        if message.get("role") == "assistant" and not message.get("tool_calls") and message.get("content"):
            return str(message["content"])
        if message.get("role") == "user":
            break
    return ""


async def _force_write_up(child: Agent) -> str:
    child.history.patch_dangling_tool_calls()
    child.history.add_injected("Stop investigating now. Write your report from what you found so far.")
    try:
        response = await child.llm.complete(
            LLMRequest(model=child.settings.model_name, messages=child.history.messages, stream=False, purpose="research")
        )
    except LLMError:
        return ""
    return response.content


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """Return the research tool."""
    return [
        ToolSpec(
            name="research",
            description=DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "task": {"type": "string", "description": "The question to investigate, specific and self-contained."},
                    "context": {"type": "string", "description": "What you already know or tried (optional)."},
                },
                "required": ["task"],
            },
            handler=_run_research,
            risk=Risk.READ,  # its own calls go through the approval policy one by one
            undoable=False,
        )
    ]
