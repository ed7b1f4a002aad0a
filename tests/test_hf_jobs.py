"""hf_jobs and the background JobWatcher against the loopback fake Hub."""

from __future__ import annotations

import asyncio
import time

import pytest

from ml_intern.config import Settings
from ml_intern.core.jobs import JobWatcher, parse_metrics
from ml_intern.core.tools import Risk
from ml_intern.tools import hf_jobs
from tests.harness.fake_hub import FakeHub, JobPlan, ToolHarness, hub_environment

TRAIN_SCRIPT = """\
from trl import SFTConfig, SFTTrainer
config = SFTConfig(output_dir="out")
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", args=config)
trainer.train()
"""


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        yield fake


@pytest.fixture
def harness(tmp_path):
    return ToolHarness(workdir=tmp_path)


def _watcher(harness: ToolHarness) -> JobWatcher:
    watcher = JobWatcher(harness.events.append, poll_interval_s=0.1)
    harness.services["jobs"] = watcher
    return watcher


async def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def test_parse_metrics_formats():
    assert parse_metrics("{'loss': 0.12, 'epoch': 1.0}") == {"loss": 0.12, "epoch": 1.0}
    assert parse_metrics("loss=0.123 lr=2e-5")["loss"] == pytest.approx(0.123)
    assert parse_metrics("step 10 | loss 1.23") == {"step": 10.0, "loss": 1.23}
    assert parse_metrics("Downloading model.safetensors") == {}


def test_risk_levels():
    risk = hf_jobs.make_risk(Settings())
    assert risk({"operation": "run"}) is Risk.COST
    assert risk({"operation": "run", "hardware_flavor": "a100-large"}) is Risk.COST
    assert risk({"operation": "scheduled run", "schedule": "@daily"}) is Risk.ALWAYS_ASK
    assert risk({"operation": "scheduled ps"}) is Risk.READ
    assert risk({"operation": "scheduled inspect"}) is Risk.READ
    assert risk({"operation": "cancel", "job_id": "x"}) is Risk.DESTRUCTIVE
    assert risk({"operation": "scheduled delete"}) is Risk.DESTRUCTIVE
    assert risk({"operation": "logs"}) is Risk.READ
    relaxed = hf_jobs.make_risk(Settings(confirm_cpu_jobs=False))
    assert relaxed({"operation": "run", "hardware_flavor": "cpu-upgrade"}) is Risk.READ
    assert relaxed({"operation": "run", "hardware_flavor": "t4-small"}) is Risk.COST


async def test_describe_shows_cost_from_live_prices_and_preflight(hub, harness):
    args = {
        "operation": "run",
        "script": TRAIN_SCRIPT,
        "hardware_flavor": "a10g-large",
        "timeout": "2h",
        "dependencies": ["trl", "flash-attn"],
    }
    info = await hf_jobs.describe(args, harness.ctx("hf_jobs"))
    # The fake Hub prices a10g-large at $1.50/h (the static table says $2.00): live prices win.
    assert info.estimated_cost_usd == pytest.approx(3.0)
    assert "a10g-large" in info.preview and "timeout 2h" in info.preview
    assert "SFTTrainer" in info.preview
    assert any("push" in w for w in info.warnings)
    assert any("kernels" in w for w in info.warnings)


async def test_run_detaches_and_watcher_reports_completion(hub, harness):
    hub.job_plan = JobPlan(scheduling_s=0.1, running_s=2.0)
    watcher = _watcher(harness)
    started = time.monotonic()
    result = await hf_jobs.handle(
        {"operation": "run", "script": "print('hi')", "dependencies": ["numpy"], "wait_s": 0.6},
        harness.ctx("hf_jobs"),
    )
    assert time.monotonic() - started < 1.8, "run must return before the job ends"
    assert result.success, result.output
    job_id = result.data["job_id"]
    assert result.data["status"] in ("RUNNING", "SCHEDULING")
    assert job_id in result.output and "/jobs/tester/" in result.output
    assert "keeps running in the background" in result.output
    spec = hub.jobs[job_id].spec
    assert spec["dockerImage"].startswith("ghcr.io/astral-sh/uv")
    assert "--with numpy" in spec["command"][-1]
    assert spec["secrets"]["HF_TOKEN"] == hub.token
    assert harness.state.side_effects and job_id in harness.state.side_effects[0]

    assert await _wait_for(
        lambda: watcher.get(job_id).status == "COMPLETED" and not watcher.is_following(job_id)
    )
    updates = [e for e in harness.of_type("job_update") if e.job_id == job_id]
    assert updates[-1].status == "COMPLETED"
    assert updates[-1].finished_at is not None and updates[-1].cost_usd is not None
    all_lines = [line for u in updates for line in u.log_lines]
    assert "Training complete" in all_lines
    merged = {}
    for update in updates:
        merged.update(update.metrics)
    assert merged["loss"] == pytest.approx(0.95)
    assert any("COMPLETED" in e.log for e in harness.of_type("tool_log"))
    await watcher.aclose()


async def test_short_job_returns_final_logs(hub, harness):
    hub.job_plan = JobPlan(scheduling_s=0.05, running_s=0.3)
    watcher = _watcher(harness)
    result = await hf_jobs.handle(
        {"operation": "run", "image": "python:3.12", "command": ["python", "-c", "print(1)"], "wait_s": 5},
        harness.ctx("hf_jobs"),
    )
    assert result.data["status"] == "COMPLETED", result.output
    assert "Training complete" in result.output
    assert hub.jobs[result.data["job_id"]].spec["command"] == ["python", "-c", "print(1)"]
    await watcher.aclose()


async def test_interrupting_the_turn_does_not_cancel_the_job(hub, harness):
    hub.job_plan = JobPlan(scheduling_s=0.1, running_s=1.0)
    watcher = _watcher(harness)
    task = asyncio.create_task(
        hf_jobs.handle({"operation": "run", "script": "print(1)", "wait_s": 30}, harness.ctx("hf_jobs"))
    )
    assert await _wait_for(lambda: bool(hub.jobs))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job_id = next(iter(hub.jobs))
    assert not hub.requests_to(r"/cancel$")
    assert await _wait_for(lambda: watcher.get(job_id).status == "COMPLETED")
    await watcher.aclose()


async def test_logs_are_a_bounded_tail(hub, harness):
    hub.job_plan = JobPlan(
        scheduling_s=0.0, running_s=0.05, logs=[f"line {i} " + "x" * 150 for i in range(600)]
    )
    api_job = await hf_jobs.handle(
        {"operation": "run", "image": "python:3.12", "command": ["true"], "wait_s": 0}, harness.ctx("hf_jobs")
    )
    job_id = api_job.data["job_id"]
    await asyncio.sleep(0.2)
    result = await hf_jobs.handle({"operation": "logs", "job_id": job_id}, harness.ctx("hf_jobs"))
    assert "line 599" in result.output and "line 0 " not in result.output
    assert len(result.output) <= 21_000
    assert "earlier lines omitted" in result.output
    await harness.services["jobs"].aclose()


async def test_inspect_ps_and_cancel(hub, harness):
    hub.job_plan = JobPlan(scheduling_s=0.0, running_s=30.0)
    watcher = _watcher(harness)
    run = await hf_jobs.handle(
        {
            "operation": "run",
            "image": "python:3.12",
            "command": ["sleep", "100"],
            "hardware_flavor": "t4-small",
            "wait_s": 0.2,
        },
        harness.ctx("hf_jobs"),
    )
    job_id = run.data["job_id"]
    ps = await hf_jobs.handle({"operation": "ps"}, harness.ctx("hf_jobs"))
    assert job_id in ps.output and "RUNNING" in ps.output
    inspect = await hf_jobs.handle({"operation": "inspect", "job_id": job_id}, harness.ctx("hf_jobs"))
    assert "RUNNING" in inspect.output and "t4-small" in inspect.output
    cancel = await hf_jobs.handle({"operation": "cancel", "job_id": job_id}, harness.ctx("hf_jobs"))
    assert cancel.success
    assert hub.jobs[job_id].stage() == "CANCELED"
    assert any("cancelled" in s for s in harness.state.side_effects)
    assert await _wait_for(lambda: watcher.get(job_id).status == "CANCELED")
    ps_all = await hf_jobs.handle({"operation": "ps"}, harness.ctx("hf_jobs"))
    assert job_id not in ps_all.output
    await watcher.aclose()


async def test_payment_required_is_explained(hub, harness):
    hub.fail(r"^/api/jobs/tester$", 402, method="POST", body={"error": "Insufficient credits"})
    result = await hf_jobs.handle({"operation": "run", "script": "print(1)"}, harness.ctx("hf_jobs"))
    assert not result.success
    assert "402" in result.output and "billing" in result.output
    states = harness.of_type("tool_state_change")
    assert states and states[0].state == "billing_required"


async def test_missing_job_and_missing_token(hub, harness, monkeypatch):
    result = await hf_jobs.handle({"operation": "inspect", "job_id": "nope"}, harness.ctx("hf_jobs"))
    assert not result.success and "404" in result.output
    monkeypatch.delenv("HF_TOKEN")
    from ml_intern.core.tools import ToolError

    with pytest.raises(ToolError, match="HF_TOKEN"):
        await hf_jobs.handle({"operation": "ps"}, harness.ctx("hf_jobs"))


async def test_reattach_follows_existing_jobs(hub, harness):
    hub.job_plan = JobPlan(scheduling_s=0.0, running_s=0.8)
    first = await hf_jobs.handle(
        {"operation": "run", "image": "python:3.12", "command": ["true"], "wait_s": 0}, harness.ctx("hf_jobs")
    )
    await harness.services["jobs"].aclose()
    job_id = first.data["job_id"]

    events: list = []
    fresh = JobWatcher(events.append, poll_interval_s=0.1)
    attached = await fresh.reattach([job_id])
    assert [j.job_id for j in attached] == [job_id]
    assert await _wait_for(lambda: fresh.get(job_id).status == "COMPLETED" and not fresh.is_following(job_id))
    assert any(e.type == "job_update" and e.status == "COMPLETED" for e in events)
    await fresh.aclose()


async def test_scheduled_operations(hub, harness):
    ctx = harness.ctx("hf_jobs")
    created = await hf_jobs.handle(
        {"operation": "scheduled run", "script": "print(1)", "schedule": "@daily"}, ctx
    )
    assert created.success, created.output
    sid = created.data["scheduled_job_id"]
    listing = await hf_jobs.handle({"operation": "scheduled ps"}, ctx)
    assert sid in listing.output and "@daily" in listing.output
    await hf_jobs.handle({"operation": "scheduled suspend", "scheduled_job_id": sid}, ctx)
    inspected = await hf_jobs.handle({"operation": "scheduled inspect", "scheduled_job_id": sid}, ctx)
    assert "suspended" in inspected.output
    await hf_jobs.handle({"operation": "scheduled resume", "scheduled_job_id": sid}, ctx)
    assert hub.scheduled[sid]["suspend"] is False
    await hf_jobs.handle({"operation": "scheduled delete", "scheduled_job_id": sid}, ctx)
    assert sid not in hub.scheduled


async def test_local_script_file_is_inlined(hub, harness):
    (harness.workdir / "train.py").write_text("print('from file')\n")
    result = await hf_jobs.handle(
        {"operation": "run", "script": "train.py", "wait_s": 0}, harness.ctx("hf_jobs")
    )
    import base64

    spec = hub.jobs[result.data["job_id"]].spec
    encoded = spec["command"][-1].split()[1]
    assert base64.b64decode(encoded).decode() == "print('from file')\n"
    assert spec["labels"]["name"] == "train"
    await harness.services["jobs"].aclose()


async def test_interrupt_during_creation_still_follows_the_job(hub, harness):
    hub.job_plan = JobPlan(scheduling_s=0.0, running_s=0.5)
    hub.delays.append(("POST", r"^/api/jobs/tester$", 0.5))
    watcher = _watcher(harness)
    task = asyncio.create_task(
        hf_jobs.handle({"operation": "run", "script": "print(1)"}, harness.ctx("hf_jobs"))
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_for(lambda: bool(hub.jobs) and watcher.jobs())
    job_id = next(iter(hub.jobs))
    assert await _wait_for(lambda: watcher.get(job_id).status == "COMPLETED")
    assert harness.state.side_effects, "the remote job is recorded for undo"
    await watcher.aclose()


async def test_describe_falls_back_to_reference_prices(hub, harness):
    hub.fail(r"^/api/jobs/hardware$", 500)
    info = await hf_jobs.describe(
        {
            "operation": "run",
            "image": "python:3.12",
            "command": ["true"],
            "hardware_flavor": "a10g-large",
            "timeout": "2h",
        },
        harness.ctx("hf_jobs"),
    )
    assert info.estimated_cost_usd == pytest.approx(4.0)  # reference table: $2.00/h
    assert "python:3.12: true" in info.preview
