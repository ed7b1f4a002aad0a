"""Background follower for Hugging Face Jobs: status, logs, metrics and cost, emitted as JobUpdate events.

A job keeps running when a turn is interrupted: watcher tasks are owned by the watcher, not by the tool call
that started them. Only `hf_jobs cancel` stops a job.
"""

from __future__ import annotations

import ast
import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml_intern.core.events import JobUpdate, ToolLog

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from ml_intern.core.events import Event

TERMINAL_STAGES = frozenset({"COMPLETED", "CANCELED", "ERROR", "DELETED"})
_MAX_KEPT_LINES = 2000
_MAX_LINES_PER_UPDATE = 200

_DICT_RE = re.compile(r"\{[^{}]{2,2000}\}")
_KEY_VALUE_RE = re.compile(
    r"(?<![\w.])([A-Za-z_][\w/.-]{0,40})\s*[=:]\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])"
)
_KNOWN_SPACED_RE = re.compile(
    r"\b(loss|train_loss|eval_loss|val_loss|accuracy|acc|lr|learning_rate|epoch|step|grad_norm|reward|perplexity)"
    r"\s+(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\b",
    re.IGNORECASE,
)


def parse_metrics(line: str) -> dict[str, float]:
    """Numbers a training log line reports: `{'loss': 0.1}`, `loss=0.1`, `loss: 0.1`, `step 10 | loss 1.2`."""
    metrics: dict[str, float] = {}
    for match in _DICT_RE.finditer(line):
        try:
            value = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            for key, number in value.items():
                if isinstance(key, str) and isinstance(number, (int, float)) and not isinstance(number, bool):
                    metrics[key] = float(number)
    if metrics:
        return metrics
    for key, number in _KEY_VALUE_RE.findall(line):
        metrics[key.strip("'\"")] = float(number)
    for key, number in _KNOWN_SPACED_RE.findall(line):
        metrics.setdefault(key.lower(), float(number))
    return metrics


@dataclass
class WatchedJob:
    """What the watcher knows about one job."""

    job_id: str
    namespace: str
    kind: str = "job"
    hardware: str = ""
    url: str = ""
    title: str = ""
    tool_call_id: str | None = None
    price_usd_per_hour: float | None = None
    status: str = ""
    status_message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    log_lines: deque[str] = field(default_factory=lambda: deque(maxlen=_MAX_KEPT_LINES))
    total_lines: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    # While True, log lines are also sent as tool_log lines of the launching call.
    stream_tool_logs: bool = True
    logs_done: bool = False
    _pending: list[str] = field(default_factory=list)
    _changed: asyncio.Event | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STAGES

    def cost_usd(self, now: float | None = None) -> float | None:
        """Cost so far: price per hour times running time."""
        if self.price_usd_per_hour is None or self.started_at is None:
            return None if self.price_usd_per_hour is None else 0.0
        end = self.finished_at or (now if now is not None else time.time())
        return round(self.price_usd_per_hour * max(0.0, end - self.started_at) / 3600, 4)


class JobWatcher:
    """Follows remote jobs in background tasks and reports them through `emit`."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        *,
        api_factory: Callable[[], HfApi] | None = None,
        poll_interval_s: float = 3.0,
    ) -> None:
        self._emit = emit
        self._api_factory = api_factory
        self.poll_interval_s = poll_interval_s
        self._jobs: dict[str, WatchedJob] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, threading.Event] = {}

    # ------------------------------------------------------------------ public API

    def get(self, job_id: str) -> WatchedJob | None:
        """Return a watched job by id."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[WatchedJob]:
        """Every job seen in this session."""
        return list(self._jobs.values())

    def is_following(self, job_id: str) -> bool:
        """True while a background task follows the job."""
        task = self._tasks.get(job_id)
        return task is not None and not task.done()

    def watch(
        self,
        job_id: str,
        *,
        namespace: str,
        hardware: str = "",
        url: str = "",
        title: str = "",
        tool_call_id: str | None = None,
        price_usd_per_hour: float | None = None,
        status: str = "",
    ) -> WatchedJob:
        """Start following a job (idempotent); returns its record."""
        job = self._jobs.get(job_id)
        if job is None:
            job = WatchedJob(
                job_id=job_id,
                namespace=namespace,
                hardware=hardware,
                url=url,
                title=title,
                tool_call_id=tool_call_id,
                price_usd_per_hour=price_usd_per_hour,
                status=status,
            )
            self._jobs[job_id] = job
        job._changed = asyncio.Event()
        if not self.is_following(job_id):
            self._emit_update(job, [])
            self._tasks[job_id] = asyncio.get_running_loop().create_task(
                self._follow(job), name=f"job-watcher-{job_id}"
            )
        return job

    async def wait_until(
        self, job_id: str, predicate: Callable[[WatchedJob], bool], timeout_s: float
    ) -> WatchedJob | None:
        """Wait until `predicate(job)` holds, the job ends, or the timeout passes."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        deadline = time.monotonic() + timeout_s
        while True:
            if job._changed is not None:
                job._changed.clear()
            if predicate(job) or (job.terminal and job.logs_done):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.is_following(job_id) or job._changed is None:
                break
            try:
                await asyncio.wait_for(job._changed.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                pass
        return job

    async def reattach(self, job_ids: Iterable[str | dict[str, Any]]) -> list[WatchedJob]:
        """Follow jobs again after a resume: ids as `id`, `namespace/id` or dicts with job_id/namespace."""
        from ml_intern.tools.hf_common import in_thread, job_price_per_hour, whoami_name

        api = self._api()
        default_namespace: str | None = None
        attached: list[WatchedJob] = []
        for item in job_ids:
            if isinstance(item, dict):
                job_id = str(item.get("job_id") or item.get("id"))
                namespace = item.get("namespace")
            elif "/" in item:
                namespace, job_id = item.rsplit("/", 1)
            else:
                job_id, namespace = item, None
            if namespace is None:
                if default_namespace is None:
                    default_namespace = await in_thread(whoami_name, api)
                namespace = default_namespace
            try:
                info = await in_thread(api.inspect_job, job_id=job_id, namespace=namespace)
            except Exception as exc:  # a job that vanished should not stop the others
                self._emit(ToolLog(tool="hf_jobs", log=f"Could not re-attach job {job_id}: {exc}"))
                continue
            flavor = str(info.flavor or "")
            job = self.watch(
                job_id,
                namespace=namespace,
                hardware=flavor,
                url=info.url,
                title=_title_of(info),
                price_usd_per_hour=job_price_per_hour(flavor),
                status=str(info.status.stage),
            )
            job.stream_tool_logs = False
            attached.append(job)
        return attached

    async def aclose(self) -> None:
        """Stop following every job (the jobs themselves keep running)."""
        for stop in self._stops.values():
            stop.set()
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ following

    def _api(self) -> HfApi:
        if self._api_factory is not None:
            return self._api_factory()
        from ml_intern.tools.hf_common import make_api

        return make_api()

    async def _follow(self, job: WatchedJob) -> None:
        from ml_intern.tools.hf_common import in_thread

        api = self._api()
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        self._stops[job.job_id] = stop
        job.logs_done = False
        log_thread = threading.Thread(
            target=self._stream_logs, args=(api, job, loop, stop), daemon=True, name=f"job-logs-{job.job_id}"
        )
        log_thread.start()
        failures = 0
        try:
            while True:
                try:
                    info = await in_thread(api.inspect_job, job_id=job.job_id, namespace=job.namespace)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    if failures in (1, 5):
                        self._emit(
                            ToolLog(tool="hf_jobs", log=f"job {job.job_id}: status check failed ({exc})")
                        )
                    await asyncio.sleep(min(60.0, self.poll_interval_s * (2 ** min(failures, 5))))
                    continue
                previous = job.status
                job.status = str(info.status.stage)
                job.status_message = info.status.message
                job.started_at = info.started_at.timestamp() if info.started_at else job.started_at
                job.finished_at = info.finished_at.timestamp() if info.finished_at else job.finished_at
                if job.terminal and job.finished_at is None:
                    job.finished_at = time.time()
                if job.status != previous:
                    note = f" ({job.status_message})" if job.status_message else ""
                    self._emit(
                        ToolLog(
                            tool="hf_jobs",
                            log=f"job {job.job_id}: {job.status}{note}",
                            tool_call_id=job.tool_call_id,
                        )
                    )
                if job.terminal:
                    # Let the log stream drain (it ends by itself once the job is over).
                    for _ in range(50):
                        if job.logs_done:
                            break
                        await asyncio.sleep(0.1)
                    self._flush(job, force=True)
                    break
                self._flush(job, force=job.status != previous)
                await asyncio.sleep(self.poll_interval_s)
        finally:
            stop.set()
            job.stream_tool_logs = False
            if job._changed is not None:
                job._changed.set()

    def _stream_logs(
        self, api: HfApi, job: WatchedJob, loop: asyncio.AbstractEventLoop, stop: threading.Event
    ) -> None:
        try:
            for line in api.fetch_job_logs(job_id=job.job_id, namespace=job.namespace, follow=True):
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(self._on_line, job, line)
        except Exception as exc:
            if not stop.is_set():
                loop.call_soon_threadsafe(self._on_line, job, f"[log stream ended: {type(exc).__name__}]")
        finally:
            try:
                loop.call_soon_threadsafe(self._logs_finished, job)
            except RuntimeError:  # loop closed
                pass

    def _logs_finished(self, job: WatchedJob) -> None:
        job.logs_done = True
        if job._changed is not None:
            job._changed.set()

    def _on_line(self, job: WatchedJob, line: str) -> None:
        job.log_lines.append(line)
        job.total_lines += 1
        job._pending.append(line)
        job.metrics.update(parse_metrics(line))
        if job.stream_tool_logs:
            self._emit(ToolLog(tool="hf_jobs", log=line, tool_call_id=job.tool_call_id))
        if len(job._pending) >= _MAX_LINES_PER_UPDATE:
            self._flush(job)
        elif job._changed is not None:
            job._changed.set()

    def _flush(self, job: WatchedJob, force: bool = False) -> None:
        lines, job._pending = job._pending, []
        if lines or force:
            self._emit_update(job, lines)
        if job._changed is not None:
            job._changed.set()

    def _emit_update(self, job: WatchedJob, lines: list[str]) -> None:
        latest: dict[str, float] = {}
        for line in lines:
            latest.update(parse_metrics(line))
        self._emit(
            JobUpdate(
                job_id=job.job_id,
                kind="job",
                status=job.status,
                hardware=job.hardware,
                url=job.url,
                started_at=job.started_at,
                finished_at=job.finished_at,
                cost_usd=job.cost_usd(),
                price_usd_per_hour=job.price_usd_per_hour,
                log_lines=lines,
                metrics=latest,
                tool_call_id=job.tool_call_id,
                title=job.title,
            )
        )


def _title_of(info: Any) -> str:
    labels = getattr(info, "labels", None) or {}
    if labels.get("name"):
        return str(labels["name"])
    command = getattr(info, "command", None) or []
    return " ".join(command)[:60] if command else str(getattr(info, "docker_image", "") or "")


def get_job_watcher(services: dict[str, Any], emit: Callable[[Event], None]) -> JobWatcher:
    """Return the session's watcher from `services["jobs"]`, creating it on first use."""
    watcher = services.get("jobs")
    if watcher is None:
        watcher = JobWatcher(emit)
        services["jobs"] = watcher
    return watcher
