"""The ML loop through the real agent: inspect a dataset, write a script, priced approval, detached job, push."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from tests.harness.fake_hub import FakeHub, JobPlan, hub_environment
from tests.harness.scripted_llm import ScriptedLLMServer, call, text, tool_calls
from tests.test_agent_e2e import Run, agent_for

SCRIPT = """\
# /// script
# dependencies = ["trl", "datasets"]
# ///
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("acme/chat-data", split="train")
config = SFTConfig(output_dir="out", logging_strategy="steps", logging_first_step=True)
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", args=config, train_dataset=dataset)
trainer.train()
"""


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        fake.job_plan = JobPlan(scheduling_s=0.2, running_s=1.5)
        yield fake


async def test_fine_tune_flow_with_priced_approval_detached_job_and_push(
    llm_server: ScriptedLLMServer, workdir: Path, hub: FakeHub
) -> None:
    llm_server.add(
        tool_calls(call("hf_inspect_dataset", {"dataset": "acme/chat-data"})),
        tool_calls(call("write", {"path": "train.py", "content": SCRIPT})),
        tool_calls(
            call("hf_jobs", {"operation": "run", "script": SCRIPT, "dependencies": ["trl", "datasets"],
                             "hardware_flavor": "a10g-large", "timeout": "2h", "wait_s": 3})
        ),
        text("The job is running; I'll check on it."),
        tool_calls(call("hf_repo_files", {"operation": "upload", "repo_id": "alice/tiny-sft", "path": "README.md",
                                          "content": "# tiny-sft\nTrained with ml-intern.\n"})),
        text("Model card pushed."),
    )
    agent = agent_for(workdir, approver=None, approval_mode="auto")
    async with Run(agent) as run:
        agent.submit(ops.UserInput(text="fine-tune Qwen 0.5B on acme/chat-data"))
        approval = await run.wait_for(ev.ApprovalRequired, timeout=20)
        item = approval.tools[0]
        assert item.tool == "hf_jobs"
        assert item.estimated_cost_usd == pytest.approx(3.0)  # the fake Hub prices a10g-large at $1.50/h, x 2 h
        assert "a10g-large" in item.preview and "$" in item.preview
        assert any("push_to_hub" in warning for warning in item.warnings)  # preflight: nothing is pushed
        agent.submit(ops.ExecApproval(approvals=[ops.ApprovalAnswer(tool_call_id=item.tool_call_id, approved=True)]))
        await asyncio.wait_for(agent.wait_idle(), 30)
        assert run.of(ev.TurnComplete)[-1].final_response == "The job is running; I'll check on it."
        # The turn ended but the job is still followed in the background until it completes.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            updates = run.of(ev.JobUpdate)
            if updates and updates[-1].status.lower() == "completed":
                break
            await asyncio.sleep(0.1)
        updates = run.of(ev.JobUpdate)
        assert updates and updates[-1].status.lower() == "completed"
        assert any("loss" in u.metrics for u in updates)
        assert updates[-1].hardware == "a10g-large"
        # Publishing asks even in auto mode.
        agent.submit(ops.UserInput(text="push a model card"))
        push = await run.wait_for_new(ev.ApprovalRequired, after=approval)
        assert push.tools[0].tool == "hf_repo_files" and "README.md" in push.tools[0].preview
        agent.submit(ops.ExecApproval(approvals=[ops.ApprovalAnswer(tool_call_id=push.tools[0].tool_call_id, approved=True)]))
        await asyncio.wait_for(agent.wait_idle(), 30)
    job_result = [m for m in llm_server.chat_requests[3].messages if m["role"] == "tool"][-1]["content"]
    job_id = run.of(ev.JobUpdate)[-1].job_id
    assert job_id in job_result  # the model got the job id to check on it later
    assert run.of(ev.TurnComplete)[-1].final_response == "Model card pushed."
    assert (workdir / "train.py").exists()
