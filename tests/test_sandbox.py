"""Sandbox Spaces end to end against the fake Hub: create, wait, exec, replace, teardown."""

from __future__ import annotations

import pytest

from ml_intern.config import Settings
from ml_intern.core.tools import Risk, ToolError
from ml_intern.tools import hf_common, sandbox
from tests.harness.fake_hub import FakeHub, ToolHarness, hub_environment


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        fake.space_boot_s = 0.2
        monkeypatch.setenv("ML_INTERN_SANDBOX_URL_TEMPLATE", "{endpoint}/_sandbox/{owner}/{name}")
        monkeypatch.setattr(sandbox, "WAIT_INTERVAL", 0.05)
        yield fake


@pytest.fixture
def harness(tmp_path):
    return ToolHarness(workdir=tmp_path)


def spaces(hub):
    return sorted(repo_id for (kind, repo_id) in hub.repos if kind == "space" and "sandbox-" in repo_id)


def test_specs_only_in_sandbox_runtime():
    assert sandbox.tool_specs(Settings()) == []
    names = [s.name for s in sandbox.tool_specs(Settings(tool_runtime="sandbox"))]
    assert names == ["sandbox_create", "bash", "read", "write", "edit"]


def test_the_token_goes_to_our_own_sandbox_but_not_to_other_spaces(monkeypatch):
    monkeypatch.delenv("ML_INTERN_SANDBOX_URL_TEMPLATE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 34)
    url = sandbox.space_api_url("Tester/sandbox-1a2b3c4d")
    assert url == "https://tester-sandbox-1a2b3c4d.hf.space"
    # Anyone can host a Space on hf.space, so such URLs never get the token by default...
    assert not hf_common.is_hf_host(url)
    assert hf_common.auth_headers("https://someone-else.hf.space/x") == {}
    # ...only the sandbox ml-intern created for this user does, next to its own secret.
    own = sandbox.Sandbox("Tester/sandbox-1a2b3c4d", "cpu-basic", "s3cret", url, 0.0)
    headers = sandbox.SandboxManager()._headers(own)
    assert headers["Authorization"] == "Bearer hf_" + "x" * 34
    assert headers["X-Sandbox-Authorization"] == "Bearer s3cret"


def test_risk_and_cost_preview(harness):
    assert sandbox.create_risk({}) is Risk.READ
    assert sandbox.create_risk({"hardware": "a10g-small"}) is Risk.COST
    info = sandbox.describe_create({"hardware": "a10g-small"}, harness.ctx("sandbox_create"))
    assert info.estimated_cost_usd == pytest.approx(1.0) and "a10g-small" in info.preview


async def test_create_exec_and_teardown(hub, harness):
    ctx = harness.ctx("sandbox_create")
    result = await sandbox.handle_create({}, ctx)
    assert result.success, result.output
    space_id = result.data["space_id"]
    assert space_id.startswith("tester/sandbox-") and len(space_id.split("-")[-1]) == 8
    repo = hub.repos[("space", space_id)]
    assert repo.private is True and sandbox._SECRET_KEY in repo.secrets
    statuses = [e.status for e in harness.of_type("job_update")]
    assert statuses[0] == "BUILDING" and statuses[-1] == "RUNNING"

    out = await sandbox.handle_bash({"command": "echo hello"}, harness.ctx("bash"))
    assert out.output.strip() == "hello"
    request = hub.requests_to(r"/_sandbox/.*/api/bash$")[-1]
    assert request.authorization == f"Bearer {hub.token}"
    assert request.headers["x-sandbox-authorization"] == f"Bearer {repo.secrets[sandbox._SECRET_KEY]}"

    await sandbox.handle_write({"path": "/app/a.py", "content": "x = 1\n"}, harness.ctx("write"))
    await sandbox.handle_edit({"path": "/app/a.py", "old_str": "1", "new_str": "2"}, harness.ctx("edit"))
    read = await sandbox.handle_read({"path": "/app/a.py"}, harness.ctx("read"))
    assert "x = 2" in read.output
    missing = await sandbox.handle_read({"path": "/app/nope"}, harness.ctx("read"))
    assert not missing.success

    again = await sandbox.handle_create({}, ctx)
    assert again.data["space_id"] == space_id, "same hardware reuses the sandbox"

    assert await harness.services["sandbox"].teardown(harness.ctx("system"))
    assert spaces(hub) == []
    assert harness.of_type("job_update")[-1].status == "DELETED"


async def test_first_use_creates_cpu_sandbox_then_upgrade_replaces_it(hub, harness):
    await sandbox.handle_bash({"command": "ls"}, harness.ctx("bash"))
    first = spaces(hub)
    assert len(first) == 1
    upgraded = await sandbox.handle_create({"hardware": "t4-small"}, harness.ctx("sandbox_create"))
    assert spaces(hub) == [upgraded.data["space_id"]] and first[0] not in spaces(hub)
    assert hub.repos[("space", upgraded.data["space_id"])].hardware == "t4-small"
    with pytest.raises(ToolError, match="cannot be changed"):
        await sandbox.handle_create({"hardware": "a10g-small"}, harness.ctx("sandbox_create"))


async def test_failed_start_cleans_up(hub, harness, monkeypatch):
    monkeypatch.setattr(sandbox, "API_WAIT_TIMEOUT", 0.3)
    hub.fail(r"/api/health$", 503)
    with pytest.raises(ToolError, match="did not answer"):
        await sandbox.handle_create({}, harness.ctx("sandbox_create"))
    assert spaces(hub) == []


async def test_payment_required(hub, harness):
    hub.fail(r"/duplicate$", 402)
    with pytest.raises(ToolError, match="402"):
        await sandbox.handle_create({"hardware": "a100-large"}, harness.ctx("sandbox_create"))
