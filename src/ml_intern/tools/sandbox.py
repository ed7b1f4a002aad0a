"""sandbox_create and bash/read/write/edit that run inside a private Hugging Face Space (--sandbox-tools)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml_intern.core.events import JobUpdate
from ml_intern.core.tools import ApprovalInfo, Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools import hf_common as hf

if TYPE_CHECKING:
    from ml_intern.config import Settings

HARDWARE = [
    "cpu-basic", "cpu-upgrade", "zero-a10g", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
    "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8",
]  # fmt: skip
DEFAULT_TEMPLATE = "burtenshaw/sandbox"
DEFAULT_TIMEOUT = 240
MAX_TIMEOUT = 1200
WAIT_TIMEOUT = 600
WAIT_INTERVAL = 5.0
API_WAIT_TIMEOUT = 180
PAID_SLEEP_TIME_S = 2700
RESERVATION_HOURS = 1.0
_SECRET_KEY = "SANDBOX_SECRET"
_FAILED_STAGES = {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "DELETING"}

CREATE_DESCRIPTION = (
    "Create the session's sandbox: a private Hugging Face Space where bash/read/write/edit run (workdir /app). "
    "cpu-basic is free and created automatically on first use; GPU hardware is billed per hour."
)
CREATE_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hardware": {"type": "string", "enum": HARDWARE, "description": "default cpu-basic"},
        "trackio_space_id": {"type": "string"},
        "trackio_project": {"type": "string"},
    },
}


def template_space() -> str:
    return os.environ.get("ML_INTERN_SANDBOX_TEMPLATE", DEFAULT_TEMPLATE)


def space_api_url(space_id: str) -> str:
    """Base URL of a Space's app: `https://<owner>-<name>.hf.space`, or a template for tests/self-hosting."""
    owner, name = space_id.split("/", 1)
    template = os.environ.get("ML_INTERN_SANDBOX_URL_TEMPLATE")
    if template:
        return template.format(endpoint=hf.hf_endpoint(), owner=owner, name=name).rstrip("/")
    subdomain = f"{owner}-{name}".lower().replace("_", "-").replace(".", "-")
    return f"https://{subdomain}.hf.space"


@dataclass
class Sandbox:
    """One live sandbox Space."""

    space_id: str
    hardware: str
    secret: str
    base_url: str
    created_at: float
    auto: bool = False

    @property
    def price_per_hour(self) -> float | None:
        return hf.space_price_per_hour(self.hardware)


class SandboxManager:
    """Owns the session's sandbox: creation (one at a time), calls into it, and teardown."""

    def __init__(self) -> None:
        self.sandbox: Sandbox | None = None
        self._lock = asyncio.Lock()

    async def ensure(self, ctx: ToolContext, hardware: str = "cpu-basic", *, auto: bool = False) -> Sandbox:
        """Return the sandbox, creating it if needed (hardware changes replace only the automatic cpu one)."""
        async with self._lock:
            current = self.sandbox
            if current is not None:
                if current.hardware == hardware or auto:
                    return current
                if not current.auto:
                    raise ToolError(
                        f"A {current.hardware} sandbox ({current.space_id}) already exists; hardware cannot be "
                        "changed in this session."
                    )
                ctx.log(f"Replacing the automatic {current.hardware} sandbox with {hardware}.")
                await self._delete(ctx, current)
            self.sandbox = await self._create(ctx, hardware, auto)
            return self.sandbox

    async def _create(self, ctx: ToolContext, hardware: str, auto: bool) -> Sandbox:
        api = hf.make_api(ctx)
        if not api.token:
            raise ToolError("A sandbox needs a Hugging Face token: set HF_TOKEN.")
        try:
            owner = await hf.in_thread(hf.whoami_name, api)
        except Exception as exc:
            raise ToolError(
                hf.describe_http_error(exc, "Could not identify your Hugging Face account")
            ) from None
        space_id = f"{owner}/sandbox-{uuid.uuid4().hex[:8]}"
        secret = secrets.token_urlsafe(32)
        ctx.log(f"Creating sandbox {space_id} on {hardware}…")
        try:
            await hf.in_thread(
                api.duplicate_repo,
                template_space(),
                space_id,
                repo_type="space",
                private=True,
                space_hardware=hardware,
                space_sleep_time=None if hardware == "cpu-basic" else PAID_SLEEP_TIME_S,
                space_secrets=[{"key": _SECRET_KEY, "value": secret}],
            )
        except Exception as exc:
            if hf.is_payment_error(exc):
                raise ToolError(hf.describe_http_error(exc, f"sandbox on {hardware}")) from None
            raise ToolError(
                hf.describe_http_error(exc, f"creating sandbox from {template_space()}")
            ) from None
        ctx.state.record_side_effect(f"created sandbox Space {space_id} ({hardware})")
        sandbox = Sandbox(space_id, hardware, secret, space_api_url(space_id), time.time(), auto)
        self._emit(ctx, sandbox, "BUILDING")
        try:
            await self._wait_running(ctx, api, sandbox)
            await self._wait_api(sandbox)
        except BaseException:
            await self._delete(ctx, sandbox)
            raise
        sandbox.created_at = time.time()
        self._emit(ctx, sandbox, "RUNNING")
        return sandbox

    async def _wait_running(self, ctx: ToolContext, api: Any, sandbox: Sandbox) -> None:
        deadline = time.monotonic() + WAIT_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            try:
                runtime = await hf.in_thread(api.get_space_runtime, sandbox.space_id)
                stage = str(runtime.stage)
            except Exception as exc:
                stage = f"unknown ({type(exc).__name__})"
            if stage != last:
                ctx.log(f"sandbox {sandbox.space_id}: {stage}")
                last = stage
            if stage == "RUNNING":
                return
            if stage in _FAILED_STAGES:
                raise ToolError(f"sandbox {sandbox.space_id} failed to start ({stage}).")
            await asyncio.sleep(WAIT_INTERVAL)
        raise ToolError(f"sandbox {sandbox.space_id} was not running after {WAIT_TIMEOUT} s.")

    async def _wait_api(self, sandbox: Sandbox) -> None:
        deadline = time.monotonic() + API_WAIT_TIMEOUT
        async with hf.http_client(timeout=10) as client:
            while time.monotonic() < deadline:
                try:
                    response = await client.get(
                        f"{sandbox.base_url}/api/health", headers=self._headers(sandbox)
                    )
                    if response.status_code == 200:
                        return
                except Exception:
                    pass
                await asyncio.sleep(min(WAIT_INTERVAL, 2.0))
        raise ToolError(
            f"sandbox {sandbox.space_id} is running but its API did not answer within {API_WAIT_TIMEOUT} s."
        )

    def _headers(self, sandbox: Sandbox) -> dict[str, str]:
        # The token goes to this sandbox only because ml-intern created it, privately, for this user.
        token = hf.hf_token()
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return {**auth, "X-Sandbox-Authorization": f"Bearer {sandbox.secret}"}

    async def call(
        self, ctx: ToolContext, action: str, payload: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """POST one action to the sandbox API."""
        sandbox = self.sandbox or await self.ensure(ctx, "cpu-basic", auto=True)
        async with hf.http_client(timeout=timeout + 15) as client:
            try:
                response = await client.post(
                    f"{sandbox.base_url}/api/{action}", json=payload, headers=self._headers(sandbox)
                )
            except Exception as exc:
                raise ToolError(
                    f"the sandbox did not answer ({type(exc).__name__}); it may be restarting."
                ) from None
        if response.status_code >= 400:
            raise ToolError(f"sandbox {action} failed: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    async def teardown(self, ctx: ToolContext | None = None, emit: Any = None) -> bool:
        """Delete the sandbox Space (3 attempts); returns True if one was deleted."""
        async with self._lock:
            sandbox, self.sandbox = self.sandbox, None
        if sandbox is None:
            return False
        return await self._delete(ctx, sandbox, emit=emit)

    async def _delete(self, ctx: ToolContext | None, sandbox: Sandbox, emit: Any = None) -> bool:
        api = hf.make_api(ctx)
        for attempt in range(3):
            try:
                await hf.in_thread(api.delete_repo, sandbox.space_id, repo_type="space")
                break
            except Exception as exc:
                if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                    break
                if attempt == 2:
                    return False
                await asyncio.sleep(attempt + 1)
        if self.sandbox is sandbox:
            self.sandbox = None
        if ctx is not None:
            self._emit(ctx, sandbox, "DELETED", finished=True)
        elif emit is not None:
            emit(self._update(sandbox, "DELETED", finished=True))
        return True

    def _update(self, sandbox: Sandbox, status: str, finished: bool = False) -> JobUpdate:
        now = time.time()
        price = sandbox.price_per_hour
        cost = None if price is None else round(price * (now - sandbox.created_at) / 3600, 4)
        return JobUpdate(
            job_id=sandbox.space_id,
            kind="sandbox",
            status=status,
            hardware=sandbox.hardware,
            url=f"{hf.hf_endpoint()}/spaces/{sandbox.space_id}",
            started_at=sandbox.created_at,
            finished_at=now if finished else None,
            cost_usd=cost,
            price_usd_per_hour=price,
            title=sandbox.space_id.split("/", 1)[1],
        )

    def _emit(self, ctx: ToolContext, sandbox: Sandbox, status: str, finished: bool = False) -> None:
        ctx.emit(self._update(sandbox, status, finished))


def get_manager(ctx: ToolContext) -> SandboxManager:
    """The session's sandbox manager from `services["sandbox"]`, created on first use."""
    manager = ctx.services.get("sandbox")
    if manager is None:
        manager = SandboxManager()
        ctx.services["sandbox"] = manager
    return manager


# ---------------------------------------------------------------------------------------------- tools


def create_risk(args: dict[str, Any]) -> Risk:
    """Paid hardware costs money; the free CPU sandbox does not."""
    return Risk.READ if (args.get("hardware") or "cpu-basic") == "cpu-basic" else Risk.COST


def describe_create(args: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
    """Hardware, hourly price and the cost of a one-hour reservation."""
    hardware = args.get("hardware") or "cpu-basic"
    price = hf.space_price_per_hour(hardware)
    existing = ctx.services.get("sandbox")
    if existing is not None and existing.sandbox is not None and existing.sandbox.hardware == hardware:
        return ApprovalInfo(
            preview=f"reuse sandbox {existing.sandbox.space_id} ({hardware})", estimated_cost_usd=0.0
        )
    cost = None if price is None else round(price * RESERVATION_HOURS, 4)
    preview = f"private Space sandbox on {hardware} from {template_space()}\n"
    preview += (
        f"${price:.2f}/h, sleeps after {PAID_SLEEP_TIME_S // 60} min idle"
        if price is not None
        else "price unknown"
    )
    return ApprovalInfo(preview=preview, estimated_cost_usd=cost)


async def handle_create(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Create (or reuse) the sandbox."""
    hardware = str(args.get("hardware") or "cpu-basic")
    if hardware not in HARDWARE:
        raise ToolError(f"unknown hardware {hardware!r}; use one of: {', '.join(HARDWARE)}")
    sandbox = await get_manager(ctx).ensure(ctx, hardware)
    return ToolResult(
        f"Sandbox {sandbox.space_id} is running on {sandbox.hardware}. bash/read/write/edit now run there "
        f"(workdir /app). Space: {hf.hf_endpoint()}/spaces/{sandbox.space_id}",
        data={"space_id": sandbox.space_id},
    )


async def _remote(action: str, payload: dict[str, Any], ctx: ToolContext, timeout: float) -> ToolResult:
    data = await get_manager(ctx).call(ctx, action, payload, timeout)
    output = str(data.get("output") or data.get("content") or "")
    success = bool(data.get("success", data.get("exit_code", 0) == 0))
    return ToolResult(output or "(no output)", success=success)


async def handle_bash(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Run a command in the sandbox."""
    timeout = max(1, min(int(args.get("timeout") or DEFAULT_TIMEOUT), MAX_TIMEOUT))
    payload = {"command": args["command"], "work_dir": args.get("work_dir") or "/app", "timeout": timeout}
    ctx.state.record_side_effect(f"sandbox bash: {str(args['command'])[:80]}")
    return await _remote("bash", payload, ctx, timeout)


async def handle_read(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Read a file in the sandbox."""
    payload = {k: args[k] for k in ("path", "offset", "limit") if args.get(k) is not None}
    return await _remote("read", payload, ctx, 60)


async def handle_write(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Write a file in the sandbox."""
    ctx.state.record_side_effect(f"sandbox write {args['path']}")
    return await _remote("write", {"path": args["path"], "content": args["content"]}, ctx, 60)


async def handle_edit(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Edit a file in the sandbox."""
    payload = {
        k: args[k] for k in ("path", "old_str", "new_str", "replace_all", "mode") if args.get(k) is not None
    }
    ctx.state.record_side_effect(f"sandbox edit {args['path']}")
    return await _remote("edit", payload, ctx, 60)


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """sandbox_create plus remote bash/read/write/edit, only when tools run in a sandbox."""
    if settings.tool_runtime != "sandbox":
        return []
    path = {"type": "string", "description": "path in the sandbox (workdir /app)"}
    return [
        ToolSpec(
            "sandbox_create",
            CREATE_DESCRIPTION,
            CREATE_PARAMETERS,
            handle_create,
            risk=create_risk,
            subject=lambda a: str(a.get("hardware") or "cpu-basic"),
            describe=describe_create,
            undoable=False,
        ),
        ToolSpec(
            "bash",
            "Run a shell command in the sandbox Space (not on the user's machine).",
            {
                "type": "object",
                "properties": {
                    "command": {"type": "string"},
                    "description": {"type": "string"},
                    "work_dir": {"type": "string", "description": "default /app"},
                    "timeout": {
                        "type": "integer",
                        "description": f"seconds (default {DEFAULT_TIMEOUT}, max {MAX_TIMEOUT})",
                    },
                },
                "required": ["command"],
            },
            handle_bash,
            risk=Risk.EDIT,
            subject=lambda a: str(a.get("command", "")),
            undoable=False,
        ),
        ToolSpec(
            "read",
            "Read a file in the sandbox with line numbers.",
            {
                "type": "object",
                "properties": {"path": path, "offset": {"type": "integer"}, "limit": {"type": "integer"}},
                "required": ["path"],
            },
            handle_read,
            risk=Risk.READ,
            subject=lambda a: str(a.get("path", "")),
            read_only=True,
            undoable=False,
        ),
        ToolSpec(
            "write",
            "Write a whole file in the sandbox.",
            {
                "type": "object",
                "properties": {"path": path, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
            handle_write,
            risk=Risk.EDIT,
            subject=lambda a: str(a.get("path", "")),
            undoable=False,
        ),
        ToolSpec(
            "edit",
            "Replace text in a sandbox file (old_str must match exactly).",
            {
                "type": "object",
                "properties": {
                    "path": path,
                    "old_str": {"type": "string"},
                    "new_str": {"type": "string"},
                    "replace_all": {"type": "boolean"},
                    "mode": {"type": "string", "enum": ["replace", "append_after", "prepend_before"]},
                },
                "required": ["path", "old_str", "new_str"],
            },
            handle_edit,
            risk=Risk.EDIT,
            subject=lambda a: str(a.get("path", "")),
            undoable=False,
        ),
    ]
