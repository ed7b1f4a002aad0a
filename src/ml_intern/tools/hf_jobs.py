"""hf_jobs: run, follow and manage Hugging Face Jobs; `run` detaches and a background watcher follows."""

from __future__ import annotations

import asyncio
import base64
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ml_intern.core.events import ToolStateChange
from ml_intern.core.jobs import TERMINAL_STAGES, get_job_watcher
from ml_intern.core.tools import ApprovalInfo, Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools import hf_common as hf
from ml_intern.tools.preflight import check_training_script

if TYPE_CHECKING:
    from ml_intern.config import Settings

OPERATIONS = [
    "run",
    "ps",
    "logs",
    "inspect",
    "cancel",
    "scheduled run",
    "scheduled ps",
    "scheduled inspect",
    "scheduled delete",
    "scheduled suspend",
    "scheduled resume",
]
UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
DOCKER_IMAGE = "python:3.12"
DEFAULT_WAIT_S = 20.0
_RUNNING_GRACE_S = 5.0
_SCRIPT_FILE = "/tmp/ml_intern_job.py"
_DEFAULT_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "warning",
    "UV_NO_PROGRESS": "1",
    "PYTHONUNBUFFERED": "1",
}

DESCRIPTION = (
    "Hugging Face Jobs (paid cloud compute). run: Python `script`+`dependencies` (uv) or Docker `image`+`command`; "
    "returns once running, then followed in the background (logs/inspect to check, cancel to stop). "
    "Job disks are wiped: push results to the Hub."
)

_STR: dict[str, Any] = {"type": "string"}
_LIST: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"type": "string", "enum": OPERATIONS},
        "script": {"type": "string", "description": "code, workdir .py path, or URL"},
        "script_args": _LIST,
        "dependencies": _LIST,
        "python": _STR,
        "image": _STR,
        "command": _LIST,
        "hardware_flavor": {
            "type": "string",
            "description": "default cpu-basic; t4-small, a10g-large, a100-large...",
        },
        "timeout": {"type": "string", "description": "default 30m"},
        "env": {"type": "object"},
        "secrets": {"type": "object"},
        "namespace": {"type": "string", "description": "user/org billed"},
        "job_id": _STR,
        "scheduled_job_id": _STR,
        "schedule": {"type": "string", "description": "cron or @hourly/@daily..."},
        "all": {"type": "boolean", "description": "ps: include finished"},
        "wait_s": {"type": "number", "description": "run: max wait, default 20"},
        "trackio_space_id": _STR,
        "trackio_project": _STR,
    },
    "required": ["operation"],
}


def _operation(args: dict[str, Any]) -> str:
    return " ".join(str(args.get("operation") or "").strip().lower().split())


def _flavor(args: dict[str, Any]) -> str:
    return str(
        args.get("hardware_flavor") or args.get("flavor") or args.get("hardware") or "cpu-basic"
    ).strip()


def make_risk(settings: Settings | None) -> Any:
    """Return the risk function: runs cost money, scheduled runs always ask, cancels/deletes are destructive."""
    confirm_cpu = True if settings is None else bool(getattr(settings, "confirm_cpu_jobs", True))

    def risk(args: dict[str, Any]) -> Risk:
        op = _operation(args)
        if op == "run":
            if _flavor(args) in hf.CPU_FLAVORS and not confirm_cpu:
                return Risk.READ
            return Risk.COST
        if op in ("scheduled run", "scheduled resume"):
            return Risk.ALWAYS_ASK
        if op in ("cancel", "scheduled delete", "scheduled suspend"):
            return Risk.DESTRUCTIVE
        return Risk.READ

    return risk


# ---------------------------------------------------------------------------------------------- building jobs


def _is_url(script: str) -> bool:
    return script.startswith(("https://", "http://"))


def _resolve_script(script: str, workdir: Path) -> tuple[str, str | None]:
    """Return (kind, code): kind is 'url' or 'inline'; local .py paths are read and inlined."""
    script = script.strip("\n") if "\n" in script else script.strip()
    if _is_url(script):
        return "url", None
    if "\n" not in script and script.endswith(".py") and " " not in script:
        path = Path(script).expanduser()
        if not path.is_absolute():
            path = workdir / path
        if not path.is_file():
            raise ToolError(f"script file not found: {script} (pass the code inline or a URL)")
        return "inline", path.read_text(encoding="utf-8", errors="replace")
    return "inline", script


def _uv_command(code: str, dependencies: list[str], python: str | None, script_args: list[str]) -> list[str]:
    encoded = base64.b64encode(code.encode()).decode()
    uv_args: list[str] = []
    for dep in dependencies:
        uv_args += ["--with", dep]
    if python:
        uv_args += ["--python", python]
    run = " ".join(shlex.quote(x) for x in ["uv", "run", *uv_args, _SCRIPT_FILE, *script_args])
    return ["bash", "-c", f"echo {encoded} | base64 -d > {_SCRIPT_FILE} && {run}"]


def _job_env(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    env = {**_DEFAULT_ENV, **{str(k): str(v) for k, v in (args.get("env") or {}).items()}}
    if args.get("trackio_space_id"):
        env["TRACKIO_SPACE_ID"] = str(args["trackio_space_id"])
        env["TRACKIO_PROJECT"] = str(args.get("trackio_project") or "ml-intern")
    secrets = {str(k): str(v) for k, v in (args.get("secrets") or {}).items()}
    token = hf.hf_token()
    if token:
        secrets.setdefault("HF_TOKEN", token)
    return env, secrets


def _launch_kwargs(args: dict[str, Any], workdir: Path) -> tuple[str, dict[str, Any], str | None]:
    """Return (mode, kwargs for run_job/run_uv_job, script code for preview)."""
    env, secrets = _job_env(args)
    common = {
        "env": env,
        "secrets": secrets,
        "flavor": _flavor(args),
        "timeout": args.get("timeout") or hf.DEFAULT_JOB_TIMEOUT,
    }
    script = args.get("script")
    dependencies = [str(d) for d in args.get("dependencies") or []]
    script_args = [str(a) for a in args.get("script_args") or []]
    if script:
        kind, code = _resolve_script(str(script), workdir)
        if kind == "url":
            return (
                "uv",
                {
                    **common,
                    "script": str(script).strip(),
                    "script_args": script_args,
                    "dependencies": dependencies,
                    "python": args.get("python"),
                    "image": args.get("image") or UV_IMAGE,
                },
                None,
            )
        assert code is not None
        command = _uv_command(code, dependencies, args.get("python"), script_args)
        name = Path(str(script)).stem if str(script).endswith(".py") and "\n" not in str(script) else "script"
        return (
            "docker",
            {**common, "image": args.get("image") or UV_IMAGE, "command": command, "name": name},
            code,
        )
    command = args.get("command")
    if not command:
        raise ToolError("run needs either `script` (Python) or `image` + `command` (Docker).")
    if isinstance(command, str):
        command = shlex.split(command)
    return (
        "docker",
        {**common, "image": args.get("image") or DOCKER_IMAGE, "command": [str(c) for c in command]},
        None,
    )


def _check_timeout(args: dict[str, Any]) -> None:
    if hf.parse_timeout_hours(args.get("timeout")) is None:
        raise ToolError(f"cannot parse timeout {args.get('timeout')!r}; use e.g. '30m', '2h' or seconds.")


# ---------------------------------------------------------------------------------------------- approval


async def describe(args: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
    """Show what will run, where, for how long and the worst-case cost."""
    op = _operation(args)
    if op not in ("run", "scheduled run"):
        target = args.get("job_id") or args.get("scheduled_job_id") or ""
        return ApprovalInfo(preview=f"hf_jobs {op} {target}".strip())
    flavor = _flavor(args)
    timeout = args.get("timeout") or hf.DEFAULT_JOB_TIMEOUT
    try:
        with anyio.move_on_after(3):
            await hf.in_thread(hf.refresh_job_prices, hf.make_api(ctx))
    except Exception:
        pass
    price = hf.job_price_per_hour(flavor)
    cost = hf.estimate_job_cost(flavor, timeout)
    lines = [f"{op} on {flavor} · timeout {timeout}"]
    lines.append(
        f"price ${price:.2f}/h · max cost ≈ ${cost:.2f}"
        if price is not None and cost is not None
        else "price unknown"
    )
    if op == "scheduled run":
        lines.append(f"schedule {args.get('schedule')} (cost repeats on every run)")
    if args.get("namespace"):
        lines.append(f"billed to {args['namespace']}")
    code: str | None = None
    try:
        _, kwargs, code = _launch_kwargs(args, ctx.workdir)
    except ToolError as exc:
        return ApprovalInfo(preview="\n".join(lines), estimated_cost_usd=cost, warnings=[str(exc)])
    if code is not None or args.get("script"):
        if args.get("dependencies"):
            lines.append("dependencies: " + ", ".join(map(str, args["dependencies"])))
        shown = code if code is not None else str(args.get("script"))
        script_lines = shown.splitlines()
        lines.append("--- script ---")
        lines.extend(script_lines[:60])
        if len(script_lines) > 60:
            lines.append(f"... ({len(script_lines) - 60} more lines)")
    else:
        lines.append(f"image {kwargs['image']}: {' '.join(kwargs['command'])}")
    env_names = sorted((args.get("env") or {}).keys())
    if env_names:
        lines.append("env: " + ", ".join(env_names))
    warnings = check_training_script(
        code
        if code is not None
        else str(args.get("script") or " ".join(map(str, args.get("command") or []))),
        hardware=flavor,
        timeout=args.get("timeout"),
        dependencies=[str(d) for d in args.get("dependencies") or []],
        script_args=[str(a) for a in args.get("script_args") or []],
    )
    if cost is None:
        warnings.append("No price or timeout could be determined for this hardware.")
    return ApprovalInfo(preview="\n".join(lines), estimated_cost_usd=cost, warnings=warnings)


# ---------------------------------------------------------------------------------------------- handler


async def handle(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Dispatch one hf_jobs operation."""
    op = _operation(args)
    if op not in OPERATIONS:
        raise ToolError(f"unknown operation {args.get('operation')!r}; use one of: {', '.join(OPERATIONS)}")
    api = hf.make_api(ctx)
    if not api.token:
        raise ToolError("Hugging Face Jobs need a token: set HF_TOKEN (a token with write access).")
    try:
        namespace = args.get("namespace") or await hf.in_thread(hf.whoami_name, api)
    except Exception as exc:
        raise ToolError(hf.describe_http_error(exc, "Could not identify your Hugging Face account")) from None
    try:
        if op == "run":
            return await _run(api, namespace, args, ctx)
        if op == "ps":
            return await _ps(api, namespace, args)
        if op in ("logs", "inspect", "cancel"):
            job_id = _required(args, "job_id")
            if op == "logs":
                return await _logs(api, namespace, job_id)
            if op == "inspect":
                return await _inspect(api, namespace, job_id, ctx)
            await hf.in_thread(api.cancel_job, job_id=job_id, namespace=namespace)
            ctx.state.record_side_effect(f"cancelled HF job {job_id}")
            return ToolResult(
                f"Cancel requested for job {job_id}. Check with inspect; the stage becomes CANCELED."
            )
        return await _scheduled(api, namespace, op, args, ctx)
    except ToolError:
        raise
    except Exception as exc:
        if hf.is_payment_error(exc):
            ctx.emit(
                ToolStateChange(
                    tool_call_id=ctx.tool_call_id,
                    tool=ctx.tool_name,
                    state="billing_required",
                    detail={"namespace": namespace, "url": "https://huggingface.co/settings/billing"},
                )
            )
        what = f"hf_jobs {op}" + (f" {args['job_id']}" if args.get("job_id") else "")
        return ToolResult(hf.describe_http_error(exc, what), success=False)


def _required(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not value:
        raise ToolError(f"operation {args.get('operation')!r} needs `{key}`.")
    return str(value)


async def _run(api: Any, namespace: str, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    _check_timeout(args)
    mode, kwargs, _ = _launch_kwargs(args, ctx.workdir)
    flavor = kwargs["flavor"]
    price = hf.job_price_per_hour(flavor)
    watcher = get_job_watcher(ctx.services, ctx.emit)
    title = kwargs.get("name") or Path(str(args.get("script") or kwargs.get("image") or "job")).name[:60]

    def adopt(info: Any) -> Any:
        ctx.state.record_side_effect(f"started HF job {info.id} on {flavor} ({info.url})")
        return watcher.watch(
            info.id,
            namespace=namespace,
            hardware=flavor,
            url=info.url,
            title=title,
            tool_call_id=ctx.tool_call_id,
            price_usd_per_hour=price,
            status=str(info.status.stage),
        )

    launch = api.run_uv_job if mode == "uv" else api.run_job
    creation = asyncio.ensure_future(hf.in_thread(launch, namespace=namespace, **kwargs))
    try:
        info = await asyncio.shield(creation)
    except asyncio.CancelledError:
        # Interrupted while the Hub creates the job: still follow it once it exists, never leave it untracked.
        creation.add_done_callback(
            lambda task: adopt(task.result()) if not task.cancelled() and task.exception() is None else None
        )
        raise
    job = adopt(info)
    wait_s = max(
        0.0, min(float(args.get("wait_s") if args.get("wait_s") is not None else DEFAULT_WAIT_S), 600.0)
    )
    running_since: list[float] = []

    def ready(j: Any) -> bool:
        if j.status == "RUNNING" and not running_since:
            running_since.append(time.monotonic())
        return bool(running_since) and time.monotonic() - running_since[0] >= min(_RUNNING_GRACE_S, wait_s)

    await watcher.wait_until(info.id, ready, wait_s)
    job.stream_tool_logs = False
    status = job.status or str(info.status.stage)
    lines = [f"Job {info.id} is {status} on {flavor} (namespace {namespace}).", f"URL: {info.url}"]
    timeout = kwargs["timeout"]
    cost = hf.estimate_job_cost(flavor, timeout)
    if price is not None:
        lines.append(f"Timeout {timeout} · ${price:.2f}/h · max ≈ ${cost or 0:.2f}")
    if job.status_message:
        lines.append(f"Message: {job.status_message}")
    log = list(job.log_lines)
    if log:
        lines.append("Logs so far:" if status not in TERMINAL_STAGES else "Logs:")
        lines.append(
            hf.tail_text(log, max_lines=40 if status not in TERMINAL_STAGES else 120, max_chars=6000)
        )
    if status in TERMINAL_STAGES:
        lines.append(f"The job finished with status {status}.")
    else:
        lines.append(
            f"It keeps running in the background (followed in the Runs pane). Check it with "
            f"hf_jobs logs/inspect job_id={info.id}; stop it with cancel."
        )
    return ToolResult(
        "\n".join(lines),
        success=status not in ("ERROR", "CANCELED", "DELETED"),
        data={"job_id": info.id, "url": info.url, "status": status, "namespace": namespace},
    )


async def _ps(api: Any, namespace: str, args: dict[str, Any]) -> ToolResult:
    jobs = await hf.in_thread(lambda: list(api.list_jobs(namespace=namespace)))
    if not args.get("all"):
        jobs = [j for j in jobs if str(j.status.stage) in ("RUNNING", "SCHEDULING")]
    if not jobs:
        scope = "" if args.get("all") else " running (pass all=true to include finished ones)"
        return ToolResult(f"No{scope} jobs in {namespace}.")
    rows = []
    for job in jobs[:50]:
        created = job.created_at.strftime("%Y-%m-%d %H:%M") if job.created_at else "?"
        what = job.docker_image or job.space_id or ""
        rows.append(f"{job.id}  {job.status.stage!s:<10} {job.flavor or ''!s:<12} {created}  {what}")
    more = f"\n... and {len(jobs) - 50} more" if len(jobs) > 50 else ""
    return ToolResult(f"Jobs in {namespace}:\n" + "\n".join(rows) + more)


async def _logs(api: Any, namespace: str, job_id: str) -> ToolResult:
    lines = await hf.in_thread(
        lambda: list(api.fetch_job_logs(job_id=job_id, namespace=namespace, follow=False))
    )
    if not lines:
        return ToolResult(f"No logs yet for job {job_id}.")
    return ToolResult(f"Logs of job {job_id} ({len(lines)} lines):\n" + hf.tail_text(lines, 200, 20_000))


async def _inspect(api: Any, namespace: str, job_id: str, ctx: ToolContext) -> ToolResult:
    info = await hf.in_thread(api.inspect_job, job_id=job_id, namespace=namespace)
    flavor = str(info.flavor or "")
    lines = [
        f"Job {info.id}: {info.status.stage}" + (f" ({info.status.message})" if info.status.message else "")
    ]
    lines.append(f"hardware {flavor} · URL {info.url}")
    if info.created_at:
        lines.append(f"created {info.created_at.isoformat(timespec='seconds')}")
    if info.started_at:
        end = info.finished_at.timestamp() if info.finished_at else time.time()
        minutes = (end - info.started_at.timestamp()) / 60
        price = hf.job_price_per_hour(flavor)
        cost = f" · cost ≈ ${price * minutes / 60:.2f}" if price is not None else ""
        lines.append(f"ran {minutes:.1f} min{cost}")
    lines.append(f"image {info.docker_image or info.space_id} · command {' '.join(info.command or [])[:200]}")
    watcher = ctx.services.get("jobs")
    watched = watcher.get(job_id) if watcher is not None else None
    if watched is not None and watched.metrics:
        shown = ", ".join(f"{k}={v:g}" for k, v in list(watched.metrics.items())[:8])
        lines.append(f"latest metrics: {shown}")
    return ToolResult("\n".join(lines), data={"status": str(info.status.stage)})


async def _scheduled(api: Any, namespace: str, op: str, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if op == "scheduled run":
        schedule = _required(args, "schedule")
        _check_timeout(args)
        mode, kwargs, _ = _launch_kwargs(args, ctx.workdir)
        if mode == "uv":
            info = await hf.in_thread(
                api.create_scheduled_uv_job, schedule=schedule, namespace=namespace, **kwargs
            )
        else:
            info = await hf.in_thread(
                api.create_scheduled_job, schedule=schedule, namespace=namespace, **kwargs
            )
        ctx.state.record_side_effect(f"created scheduled HF job {info.id} ({schedule})")
        return ToolResult(
            f"Scheduled job {info.id} created ({schedule}) on {kwargs['flavor']} in {namespace}. "
            f"Each run costs up to ${hf.estimate_job_cost(kwargs['flavor'], kwargs['timeout']) or 0:.2f}.",
            data={"scheduled_job_id": info.id},
        )
    if op == "scheduled ps":
        items = await hf.in_thread(lambda: list(api.list_scheduled_jobs(namespace=namespace)))
        if not items:
            return ToolResult(f"No scheduled jobs in {namespace}.")
        rows = [
            f"{s.id}  {s.schedule:<12} {'suspended' if s.suspend else 'active':<9} "
            f"{s.job_spec.flavor or ''}  {s.job_spec.docker_image or s.job_spec.space_id or ''}"
            for s in items
        ]
        return ToolResult(f"Scheduled jobs in {namespace}:\n" + "\n".join(rows))
    scheduled_id = _required(args, "scheduled_job_id")
    if op == "scheduled inspect":
        s = await hf.in_thread(api.inspect_scheduled_job, scheduled_job_id=scheduled_id, namespace=namespace)
        nxt = s.status.next_job_run_at.isoformat(timespec="seconds") if s.status.next_job_run_at else "?"
        last = s.status.last_job.id if s.status.last_job else "none"
        return ToolResult(
            f"Scheduled job {s.id}: {s.schedule}, {'suspended' if s.suspend else 'active'}, next run {nxt}, "
            f"last job {last}, hardware {s.job_spec.flavor}, image {s.job_spec.docker_image or s.job_spec.space_id}"
        )
    action = {
        "scheduled delete": (api.delete_scheduled_job, "deleted"),
        "scheduled suspend": (api.suspend_scheduled_job, "suspended"),
        "scheduled resume": (api.resume_scheduled_job, "resumed"),
    }[op]
    await hf.in_thread(action[0], scheduled_job_id=scheduled_id, namespace=namespace)
    ctx.state.record_side_effect(f"{action[1]} scheduled HF job {scheduled_id}")
    return ToolResult(f"Scheduled job {scheduled_id} {action[1]}.")


def _subject(args: dict[str, Any]) -> str:
    op = _operation(args)
    return (
        f"{op} {_flavor(args)}"
        if op in ("run", "scheduled run")
        else f"{op} {args.get('job_id') or ''}".strip()
    )


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """The hf_jobs tool."""
    return [
        ToolSpec(
            name="hf_jobs",
            description=DESCRIPTION,
            parameters=PARAMETERS,
            handler=handle,
            risk=make_risk(settings),
            subject=_subject,
            describe=describe,
            read_only=False,
            undoable=False,
        )
    ]
