"""`ml-intern --demo`: the real agent and real tools in a temporary folder, driven by a scripted model."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_intern.core.llm_types import LLMRequest, LLMResponse, LLMToolCall, TokenUsage

if TYPE_CHECKING:
    from ml_intern.config import Settings
    from ml_intern.core.agent import Agent
    from ml_intern.core.tools import ToolContext, ToolResult, ToolSpec

DEMO_MODEL = "demo/scripted-intern"
DEMO_PROMPT = "Train a tiny regression model on synthetic data and tell me how it went."

TRAIN_SCRIPT = '''\
"""Tiny linear regression trained with SGD on synthetic data (pure Python, no dependencies)."""

import json
import random
import sys
import time

# Optional arguments: epochs and learning rate.
EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
LR = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
random.seed(0)
TRUE_W, TRUE_B = 3.0, -1.5
data = [(x, TRUE_W * x + TRUE_B + random.gauss(0, 0.1)) for x in (random.uniform(-1, 1) for _ in range(256))]

w, b = 0.0, 0.0
with open("train_log.txt", "w") as log:
    for epoch in range(1, EPOCHS + 1):
        random.shuffle(data)
        total = 0.0
        for x, y in data:
            error = (w * x + b) - y
            total += error * error
            w -= LR * 2 * error * x
            b -= LR * 2 * error
        loss = total / len(data)
        line = f"epoch {epoch}/{EPOCHS} loss {loss:.4f} w {w:.3f} b {b:.3f}"
        print(line, flush=True)
        log.write(line + "\\n")
        time.sleep(0.1)

with open("metrics.json", "w") as handle:
    json.dump({"final_loss": round(loss, 4), "w": round(w, 3), "b": round(b, 3)}, handle)
print("saved metrics.json")
'''

_PLAN = [
    ("1", "Write a tiny training script"),
    ("2", "Run it locally"),
    ("3", "Read the training log"),
    ("4", "Run it as a background job (Runs pane)"),
    ("5", "Report the results"),
]


def _plan(done: int, active: int | None) -> dict[str, Any]:
    todos = []
    for index, (item_id, content) in enumerate(_PLAN):
        status = "completed" if index < done else "in_progress" if index == active else "pending"
        todos.append({"id": item_id, "content": content, "status": status})
    return {"todos": todos}


class DemoLLM:
    """A scripted model: streams short texts in small chunks and calls real tools in a fixed order."""

    def __init__(self, *, chunk_delay: float = 0.012, chunk_size: int = 6, python: str | None = None) -> None:
        self.chunk_delay = chunk_delay
        self.chunk_size = chunk_size
        self.python = python or ("python3" if shutil.which("python3") else "python")
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest, on_chunk: Callable[[str], None] | None = None) -> LLMResponse:
        """Answer the next step of the script."""
        self.requests.append(request)
        if request.purpose != "main":
            return await self._respond("Summary: the user asked for a tiny training run; it was written and run.",
                                       [], request, on_chunk)
        text, calls = self._step(request.messages)
        return await self._respond(text, calls, request, on_chunk)

    async def _respond(self, text: str, calls: list[tuple[str, dict[str, Any]]], request: LLMRequest,
                       on_chunk: Callable[[str], None] | None) -> LLMResponse:
        if on_chunk is not None:
            for start in range(0, len(text), self.chunk_size):
                on_chunk(text[start : start + self.chunk_size])
                await asyncio.sleep(self.chunk_delay)
        turn = len(request.messages)
        tool_calls = [
            LLMToolCall(id=f"demo_{turn}_{index}", name=name, arguments=json.dumps(arguments))
            for index, (name, arguments) in enumerate(calls)
        ]
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in request.messages) // 4 + 900
        completion_tokens = max(1, len(text) // 4 + 40 * len(calls))
        return LLMResponse(
            content=text,
            tool_calls=tool_calls,
            finish_reason="tool_calls" if tool_calls else "stop",
            usage=TokenUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens),
            cost_usd=0.0,
            model=request.model,
        )

    def _step(self, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        users = [i for i, m in enumerate(messages) if m.get("role") == "user" and not _injected(m)]
        last_user = users[-1] if users else 0
        if len(users) > 1:
            return (
                "This is the scripted **demo** model, so it only knows one task. Run `ml-intern` without `--demo` "
                "and pick a model (`/model`) to ask anything.",
                [],
            )
        after = messages[last_user + 1 :]
        step = sum(1 for m in after if m.get("role") == "assistant")
        results = [str(m.get("content") or "") for m in after if m.get("role") == "tool"]
        if results and "denied" in results[-1].lower() and "NOT run" in results[-1]:
            return (
                "Understood, I did not do that. Tell me what you would like instead, or press **Enter** on a new "
                "instruction.",
                [],
            )
        if step == 0:
            return (
                "I'll train a tiny model end to end: write a script, run it here, read the log, and report. "
                "Here is the plan.",
                [("plan_tool", _plan(0, 0))],
            )
        if step == 1:
            return (
                "First, a dependency-free training script: linear regression with SGD on synthetic data "
                "(`y = 3x - 1.5` plus noise). It logs the loss every epoch.",
                [("write", {"path": "train.py", "content": TRAIN_SCRIPT})],
            )
        if step == 2:
            return (
                "Script written. Now I'll run it.",
                [
                    ("plan_tool", _plan(1, 1)),
                    ("bash", {"command": f"{self.python} train.py", "description": "Run the toy training",
                              "timeout": 60}),
                ],
            )
        if step == 3:
            return (
                "Training finished. Let me read the log to check convergence.",
                [("plan_tool", _plan(2, 2)), ("read", {"path": "train_log.txt"})],
            )
        if step == 4:
            return (
                "It converged. In a real session the next step is a longer run on Hugging Face Jobs; here a **local "
                "demo job** stands in for it (no Hub, no cost): 20 epochs at a lower learning rate, so you can watch "
                "the Runs pane follow its status, log and loss curve.",
                [("plan_tool", _plan(3, 3)), (DEMO_JOB_TOOL, {"script": "train.py", "args": ["20", "0.001"]})],
            )
        if step == 5:
            return ("Everything is done; updating the plan.", [("plan_tool", _plan(5, None))])
        return _report(results, messages), []


def _injected(message: dict[str, Any]) -> bool:
    return str(message.get("content") or "").startswith("[ml-intern]")


def _report(results: list[str], messages: list[dict[str, Any]]) -> str:
    outputs = [str(m.get("content") or "") for m in messages if m.get("role") == "tool"]
    log = "\n".join(text for text in outputs if not text.startswith("Local demo job"))
    losses = re.findall(r"loss (\d+\.\d+)", log)
    weights = re.findall(r"w (-?\d+\.\d+) b (-?\d+\.\d+)", log)
    first = losses[0] if losses else "?"
    last = losses[-1] if losses else "?"
    w, b = weights[-1] if weights else ("?", "?")
    job = re.search(r"Local demo job (\S+) .*?: (\w+)", "\n".join(outputs))
    job_line = (
        f"The background job `{job.group(1)}` ended **{job.group(2)}**; its log and loss curve are in the Runs "
        "pane (Ctrl+O shows or hides it).\n\n"
        if job
        else ""
    )
    return (
        "## Training report\n\n"
        f"The model converged: the loss fell from **{first}** after the first epoch to **{last}** after eight.\n\n"
        f"{job_line}"
        "| parameter | learned | true |\n|---|---|---|\n"
        f"| w | {w} | 3.0 |\n| b | {b} | -1.5 |\n\n"
        "The final loss sits at the noise floor (σ² = 0.01), so there is nothing left to learn. Files in the demo "
        "folder: `train.py`, `train_log.txt`, `metrics.json`.\n\n"
        "*Next, in a real session:* push the script to the Hub, or launch a GPU run with `hf_jobs`."
    )


def demo_settings(settings: Settings) -> Settings:
    """Return settings for the demo: scripted model, ask mode, nothing saved outside the temporary folder."""
    return settings.model_copy(
        update={
            "model_name": DEMO_MODEL,
            "context_window": 32_768,
            "approval_mode": "ask",
            "save_sessions": False,
            "mcpServers": {},
            "stream": True,
        }
    )


def build_demo_agent(settings: Settings, *, llm: DemoLLM | None = None, workdir: Path | None = None) -> Agent:
    """Create the real Agent with real tools in a fresh temporary workspace and the scripted model."""
    from ml_intern.core.agent import Agent

    folder = workdir or Path(tempfile.mkdtemp(prefix="ml-intern-demo-"))

    class DemoAgent(Agent):
        """The real Agent plus the demo-only local job tool."""

        async def start(self) -> None:
            await super().start()
            self.router.register(demo_job_spec())
            self.tools_changed()
            self.history.set_system_prompt(self._system_prompt())

    return DemoAgent(demo_settings(settings), llm=llm or DemoLLM(), workdir=folder)


# --- the demo-only stand-in for a Hugging Face Job ---------------------------------------------------------------

DEMO_JOB_TOOL = "demo_local_job"
DEMO_JOB_TITLE = "local demo · no Hub"
DEMO_JOB_HARDWARE = "cpu (local)"
# How long the tool waits for the job before answering "still running" (the demo script takes about 1.5 s).
DEMO_JOB_WAIT_S = 20.0
_demo_jobs: set[asyncio.Task[Any]] = set()


def demo_job_spec() -> ToolSpec:
    """The demo-only tool: runs a script of the demo folder as a local background job that reports like HF Jobs."""
    from ml_intern.core.tools import ApprovalInfo, Risk, ToolSpec

    def describe(arguments: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
        command = " ".join([str(arguments.get("script") or "train.py"), *map(str, arguments.get("args") or [])])
        return ApprovalInfo(
            preview=f"$ python {command}\n\n{DEMO_JOB_TITLE}: runs here, in the demo folder, "
            f"on {DEMO_JOB_HARDWARE}. Nothing is sent to the Hub.",
            estimated_cost_usd=0.0,
        )

    return ToolSpec(
        name=DEMO_JOB_TOOL,
        description=(
            "DEMO ONLY. Run a Python script of the demo folder as a local background job (a stand-in for hf_jobs: "
            "no Hub, no cost). Its status, log and metrics stream to the Runs pane."
        ),
        parameters={
            "type": "object",
            "properties": {
                "script": {"type": "string", "description": "Script path inside the demo folder."},
                "args": {"type": "array", "items": {"type": "string"}, "description": "Command-line arguments."},
            },
            "required": ["script"],
        },
        handler=_run_demo_job,
        risk=Risk.EXEC,
        subject=lambda arguments: str(arguments.get("script") or ""),
        describe=describe,
        source="demo",
        undoable=False,
    )


async def _run_demo_job(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    from ml_intern.core.tools import ToolError, ToolResult

    script = (ctx.workdir / str(arguments.get("script") or "train.py")).resolve()
    if not script.is_file() or ctx.workdir.resolve() not in script.parents:
        raise ToolError(f"No script {arguments.get('script')!r} in the demo folder.")
    job_id = f"demo-job-{uuid.uuid4().hex[:6]}"
    run_dir = ctx.workdir / "job-runs" / job_id
    run_dir.mkdir(parents=True)
    ctx.state.record_side_effect(f"local demo job {job_id}")
    args = [str(arg) for arg in arguments.get("args") or []]
    task = asyncio.get_running_loop().create_task(_follow_demo_job(job_id, script, args, run_dir, ctx))
    _demo_jobs.add(task)
    task.add_done_callback(_demo_jobs.discard)
    # The job is not cancelled with the turn: like a cloud job, it keeps running in the background.
    await asyncio.wait({task}, timeout=DEMO_JOB_WAIT_S)
    if not task.done():
        return ToolResult(f"Local demo job {job_id} ({DEMO_JOB_TITLE}): RUNNING; follow it in the Runs pane.")
    status, elapsed, metrics, tail = task.result()
    shown = ", ".join(f"{key}={value:g}" for key, value in metrics.items())
    return ToolResult(
        f"Local demo job {job_id} ({DEMO_JOB_TITLE}, {DEMO_JOB_HARDWARE}, $0.00): {status} in {elapsed:.1f}s.\n"
        f"Last metrics: {shown or 'none'}\nLast lines:\n" + "\n".join(tail),
        success=status == "COMPLETED",
    )


async def _follow_demo_job(
    job_id: str, script: Path, args: list[str], run_dir: Path, ctx: ToolContext
) -> tuple[str, float, dict[str, float], list[str]]:
    """Run the script and emit JobUpdate events as the Hub job watcher does: RUNNING, log lines, final status."""
    from ml_intern.core.events import JobUpdate
    from ml_intern.core.jobs import parse_metrics

    started = time.time()

    def update(status: str, lines: list[str], **extra: Any) -> None:
        metrics: dict[str, float] = {}
        for line in lines:
            metrics.update(parse_metrics(line))
        ctx.emit(JobUpdate(job_id=job_id, status=status, hardware=DEMO_JOB_HARDWARE, title=DEMO_JOB_TITLE,
                           started_at=started, price_usd_per_hour=0.0, cost_usd=0.0, log_lines=lines,
                           metrics=metrics, tool_call_id=ctx.tool_call_id, **extra))

    update("RUNNING", [f"$ python {' '.join([script.name, *args])}   ({DEMO_JOB_TITLE})"])
    metrics: dict[str, float] = {}
    tail: deque[str] = deque(maxlen=5)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-u", str(script), *args, cwd=run_dir, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        )
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            metrics.update(parse_metrics(line))
            update("RUNNING", [line])
        code = await process.wait()
    except OSError as exc:
        code, line = -1, f"could not start: {exc}"
        tail.append(line)
    status = "COMPLETED" if code == 0 else "ERROR"
    finished = time.time()
    update(status, [f"exit code {code}"], finished_at=finished)
    return status, finished - started, metrics, list(tail)
