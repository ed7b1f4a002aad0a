"""One user turn: call the model, run its tool calls (asking where the policy says), repeat until it answers."""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml_intern.core import events as ev
from ml_intern.core.doom_loop import signature
from ml_intern.core.llm_types import ContextOverflowError, LLMError, LLMRequest, LLMResponse
from ml_intern.core.operations import ApprovalAnswer
from ml_intern.core.tools import ApprovalInfo, ParsedCall, Risk, parse_tool_call

if TYPE_CHECKING:
    from ml_intern.core.agent import Agent

PREVIEW_LIMIT = 6000


class TurnEnded(Exception):
    """Raised inside a turn to end it early with an event already emitted."""


@dataclass
class CallPlan:
    """One tool call on its way through approval and execution."""

    parsed: ParsedCall
    result: str | None = None
    success: bool = False
    verdict: str = "run"  # run, ask, deny
    reason: str = ""
    info: ApprovalInfo = field(default_factory=ApprovalInfo)
    risk: Risk = Risk.READ
    subject: str = ""
    duration_s: float | None = None


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


async def run_turn(agent: Agent, text: str) -> None:
    """Run one user turn to completion, interruption, error or the iteration cap."""
    history = agent.history
    history.add_user(text)
    agent.sync_store()
    agent.emit(ev.Processing())
    agent.doom_guard.reset()
    agent.malformed_streak.clear()
    cap = agent.settings.max_iterations
    iterations = 0
    final: str | None = None
    while True:
        if cap >= 0 and iterations >= cap:
            agent.emit(
                ev.IterationLimitReached(
                    max_iterations=cap,
                    message=f"Stopped after {cap} model calls in this turn (the --max-iterations cap). "
                    "Send a message to let it continue, or raise the cap.",
                )
            )
            agent.last_turn_outcome = "iteration_limit"
            return
        iterations += 1
        response = await _call_model(agent)
        if response is None:
            return  # an error event was emitted
        if response.finish_reason == "length" and response.tool_calls:
            lost = ", ".join(sorted({c.name for c in response.tool_calls}))
            history.add_assistant(response.content)
            history.add_injected(
                "[ml-intern] Your last reply hit the output token limit, so its tool calls were cut off and NOT run "
                f"({lost}). Do not resend the same large content: write big files in several smaller edit calls, "
                "or use bash with a heredoc in parts."
            )
            agent.emit(ev.ToolLog(tool="system", log=f"Reply truncated by the token limit; dropped calls: {lost}."))
            agent.sync_store()
            continue
        if not response.tool_calls:
            history.add_assistant(response.content)
            agent.sync_store()
            final = response.content
            break
        await _run_tool_calls(agent, response)
        finding = agent.doom_guard.check()
        if finding is not None:
            history.add_injected(finding.message)
            agent.emit(ev.DoomLoopDetected(kind=finding.kind, tools=finding.tools, message=finding.message))
            agent.sync_store()
    agent.last_turn_outcome = "done"
    agent.emit(ev.TurnComplete(history_size=len(history), final_response=final, iterations=iterations))


async def _call_model(agent: Agent) -> LLMResponse | None:
    """Make one LLM request (compacting first when needed); return None after emitting an error."""
    settings = agent.settings
    compacted_for_request = await agent.maybe_compact()
    agent.history.patch_dangling_tool_calls()
    streamed = False

    def on_chunk(text: str) -> None:
        nonlocal streamed
        streamed = True
        agent.emit(ev.AssistantChunk(content=text))

    while True:
        request = LLMRequest(
            model=settings.model_name,
            messages=agent.history.messages,
            tools=agent.tool_schemas(),
            stream=settings.stream,
            max_tokens=settings.max_output_tokens,
            reasoning_effort=settings.reasoning_effort,
        )
        try:
            response = await agent.llm.complete(request, on_chunk if settings.stream else None)
        except ContextOverflowError as exc:
            if streamed:
                agent.emit(ev.AssistantStreamEnd())
            if compacted_for_request:
                agent.emit(ev.Error(error=exc.message + " Compaction already ran for this request.", kind=exc.kind))
                agent.last_turn_outcome = "error"
                return None
            agent.emit(ev.ToolLog(tool="system", log="The provider says the request is too large; compacting."))
            if not await agent.maybe_compact(force=True):
                agent.emit(ev.Error(error=exc.message, kind=exc.kind))
                agent.last_turn_outcome = "error"
                return None
            compacted_for_request = True
            continue
        except LLMError as exc:
            if streamed:
                agent.emit(ev.AssistantStreamEnd())
            agent.emit(ev.Error(error=exc.message, kind=exc.kind))
            agent.last_turn_outcome = "error"
            return None
        break
    if settings.stream:
        agent.emit(ev.AssistantStreamEnd())
    elif response.content:
        agent.emit(ev.AssistantMessage(content=response.content))
    agent.account_usage(response)
    return response


def _wire_calls(plans: list[CallPlan]) -> list[dict[str, Any]]:
    calls = []
    for plan in plans:
        parsed = plan.parsed
        arguments = parsed.raw_arguments if parsed.arguments is not None else "{}"
        calls.append(
            {"id": parsed.tool_call_id, "type": "function", "function": {"name": parsed.name, "arguments": arguments}}
        )
    return calls


async def _run_tool_calls(agent: Agent, response: LLMResponse) -> None:
    """Parse, approve and run the calls of one response; append results in call order."""
    seen: set[str] = set()
    plans: list[CallPlan] = []
    known = agent.router.names()
    for call in response.tool_calls:
        call_id = call.id if call.id and call.id not in seen else f"call_{uuid.uuid4().hex[:12]}"
        seen.add(call_id)
        plans.append(CallPlan(parse_tool_call(call_id, call.name, call.arguments, known)))
    agent.history.add_assistant(response.content, _wire_calls(plans))
    agent.sync_store()

    # Unusable calls become error results at once.
    for plan in plans:
        parsed = plan.parsed
        if parsed.error is not None:
            plan.result, plan.success = parsed.error, False
            agent.emit(ev.ToolCall(tool=parsed.name, arguments={}, tool_call_id=parsed.tool_call_id))
            agent.emit(ev.ToolOutput(tool=parsed.name, tool_call_id=parsed.tool_call_id, output=parsed.error, success=False))
            _note_malformed(agent, parsed)

    # Classify the rest.
    runnable = [p for p in plans if p.result is None]
    for plan in runnable:
        spec = agent.router.get(plan.parsed.name)
        assert spec is not None and plan.parsed.arguments is not None
        plan.risk = spec.risk_for(plan.parsed.arguments)
        plan.subject = spec.subject_for(plan.parsed.arguments)
        over_budget = agent.over_budget()
        verdict = agent.policy.decide(spec.name, plan.risk, plan.subject, over_budget=over_budget)
        plan.verdict, plan.reason = verdict.action, verdict.reason
        if plan.verdict == "ask" or plan.risk >= Risk.COST:
            plan.info = await _describe(agent, plan)

    denied_by_rule = [p for p in runnable if p.verdict == "deny"]
    for plan in denied_by_rule:
        plan.result = f"Not run: {plan.reason}. Choose another approach."
        plan.success = False
        _emit_rejected(agent, plan)

    to_ask = [p for p in runnable if p.verdict == "ask"]
    if to_ask:
        answers = await _ask(agent, to_ask)
        for plan in to_ask:
            answer = answers.get(plan.parsed.tool_call_id)
            if answer is not None and answer.approved:
                plan.verdict = "run"
                agent.emit(ev.ToolStateChange(tool_call_id=plan.parsed.tool_call_id, tool=plan.parsed.name, state="approved"))
                agent.remember_answer(plan.parsed.name, plan.subject, answer)
            else:
                feedback = (answer.feedback or "").strip() if answer else ""
                plan.result = "The user denied this call; it was NOT run."
                if feedback:
                    plan.result += f" User feedback: {feedback}"
                plan.success = False
                if answer is not None:
                    agent.remember_answer(plan.parsed.name, plan.subject, answer)
                _emit_rejected(agent, plan)

    to_run = [p for p in runnable if p.verdict == "run" and p.result is None]
    if to_run:
        for plan in to_run:
            agent.emit(ev.ToolCall(tool=plan.parsed.name, arguments=plan.parsed.arguments or {}, tool_call_id=plan.parsed.tool_call_id))
            agent.emit(ev.ToolStateChange(tool_call_id=plan.parsed.tool_call_id, tool=plan.parsed.name, state="running"))
        try:
            await asyncio.gather(*(_execute(agent, plan) for plan in to_run))
        except asyncio.CancelledError:
            for plan in to_run:
                if plan.result is None:
                    agent.emit(ev.ToolStateChange(tool_call_id=plan.parsed.tool_call_id, tool=plan.parsed.name, state="cancelled"))
            raise
        for plan in to_run:
            if plan.risk >= Risk.COST and plan.success and plan.info.estimated_cost_usd:
                agent.spent_usd += plan.info.estimated_cost_usd

    for plan in plans:
        parsed = plan.parsed
        agent.history.add_tool_result(parsed.tool_call_id, parsed.name, plan.result or "")
        agent.doom_guard.record(signature(parsed.name, parsed.raw_arguments, plan.result or ""))
    agent.sync_store()


def _note_malformed(agent: Agent, parsed: ParsedCall) -> None:
    streak = agent.malformed_streak
    streak[parsed.name] = streak.get(parsed.name, 0) + 1
    for other in list(streak):
        if other != parsed.name:
            streak.pop(other)
    if streak[parsed.name] == 2:
        agent.history.add_injected(
            f"[ml-intern] Your '{parsed.name}' calls keep arriving with unusable arguments. Stop resending the same "
            "shape: send smaller, valid JSON objects (split large files into several edits, or use bash with a "
            "heredoc)."
        )
        agent.emit(ev.ToolLog(tool="system", log=f"Repeated malformed arguments for {parsed.name}; nudging the model."))


def _emit_rejected(agent: Agent, plan: CallPlan) -> None:
    parsed = plan.parsed
    agent.emit(ev.ToolStateChange(tool_call_id=parsed.tool_call_id, tool=parsed.name, state="rejected"))
    agent.emit(ev.ToolOutput(tool=parsed.name, tool_call_id=parsed.tool_call_id, output=plan.result or "", success=False))


async def _describe(agent: Agent, plan: CallPlan) -> ApprovalInfo:
    spec = agent.router.get(plan.parsed.name)
    arguments = plan.parsed.arguments or {}
    info = ApprovalInfo()
    if spec is not None and spec.describe is not None:
        try:
            result = spec.describe(arguments, agent.tool_context(spec.name, plan.parsed.tool_call_id))
            info = await result if inspect.isawaitable(result) else result
        except Exception as exc:  # a preview must never block an approval
            info = ApprovalInfo(warnings=[f"preview unavailable: {exc}"])
    if not info.preview:
        if plan.parsed.name == "bash":
            info.preview = "$ " + str(arguments.get("command", ""))
        else:
            info.preview = json.dumps(arguments, indent=2, ensure_ascii=False)
    info.preview = _short(info.preview, PREVIEW_LIMIT)
    return info


async def _ask(agent: Agent, plans: list[CallPlan]) -> dict[str, ApprovalAnswer]:
    items = [
        ev.ApprovalItem(
            tool=p.parsed.name,
            arguments=p.parsed.arguments or {},
            tool_call_id=p.parsed.tool_call_id,
            reason=p.reason,
            preview=p.info.preview,
            estimated_cost_usd=p.info.estimated_cost_usd,
            warnings=p.info.warnings,
            subject=p.subject,
        )
        for p in plans
    ]
    for item in items:
        agent.emit(ev.ToolStateChange(tool_call_id=item.tool_call_id, tool=item.tool, state="awaiting_approval"))
    return await agent.request_approval(items)


async def _execute(agent: Agent, plan: CallPlan) -> None:
    parsed = plan.parsed
    ctx = agent.tool_context(parsed.name, parsed.tool_call_id)
    result, duration = await agent.router.call(parsed.name, parsed.arguments or {}, ctx)
    plan.result, plan.success, plan.duration_s = result.output, result.success, duration
    agent.emit(
        ev.ToolOutput(
            tool=parsed.name,
            tool_call_id=parsed.tool_call_id,
            output=result.output,
            success=result.success,
            duration_s=round(duration, 3),
        )
    )
    agent.emit(
        ev.ToolStateChange(
            tool_call_id=parsed.tool_call_id, tool=parsed.name, state="done" if result.success else "failed"
        )
    )
