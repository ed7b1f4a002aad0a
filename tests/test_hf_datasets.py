"""hf_inspect_dataset against the fake Hub's dataset viewer endpoints."""

from __future__ import annotations

import pytest

from ml_intern.tools import hf_common, hf_datasets
from tests.harness.fake_hub import FakeHub, ToolHarness, hub_environment


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        yield fake


@pytest.fixture
def harness(tmp_path):
    return ToolHarness(workdir=tmp_path)


def test_datasets_server_url(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_DATASETS_SERVER_URL", raising=False)
    assert hf_common.datasets_server_url() == "https://datasets-server.huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9999/")
    assert hf_common.datasets_server_url() == "http://127.0.0.1:9999"
    monkeypatch.setenv("HF_DATASETS_SERVER_URL", "http://viewer.local")
    assert hf_common.datasets_server_url() == "http://viewer.local"


async def test_inspect_chat_dataset(hub, harness):
    result = await hf_datasets.handle(
        {"dataset": "acme/chat-data", "sample_rows": 50}, harness.ctx("hf_inspect_dataset")
    )
    out = result.output
    assert result.success, out
    assert "Viewer: viewer, preview" in out
    assert "train (1,000 rows)" in out and "test (100 rows)" in out
    assert "messages: list[{role: string, content: string}]" in out
    assert "Parquet: 2 files" in out
    assert "Sample rows (default/train, 2 of 2 fetched)" in out
    long_cells = [line for line in out.splitlines() if line.startswith("  [0]")]
    assert long_cells and "… (+" in long_cells[0], "long values are cut at ~150 chars"
    assert "chat column" in out and "'assistant': 3" in out and "turns min 3, avg 3.5, max 4" in out
    # The five viewer endpoints were queried, with the token (the endpoint is the HF host here).
    paths = {r.path for r in hub.requests}
    assert {"/is-valid", "/splits", "/parquet", "/info", "/first-rows"} <= paths
    assert all(r.authorization == f"Bearer {hub.token}" for r in hub.requests_to(r"^/(is-valid|splits)$"))


async def test_gated_dataset_needs_token(hub, harness, monkeypatch):
    ok = await hf_datasets.handle({"dataset": "acme/gated-chat"}, harness.ctx("hf_inspect_dataset"))
    assert ok.success, ok.output
    monkeypatch.delenv("HF_TOKEN")
    denied = await hf_datasets.handle({"dataset": "acme/gated-chat"}, harness.ctx("hf_inspect_dataset"))
    assert not denied.success and "gated or private" in denied.output and "HF_TOKEN" in denied.output


async def test_missing_dataset_and_bad_split(hub, harness):
    missing = await hf_datasets.handle({"dataset": "acme/nothing"}, harness.ctx("hf_inspect_dataset"))
    assert not missing.success and "not found" in missing.output
    bad = await hf_datasets.handle({"dataset": "acme/chat-data", "split": "validation"}, harness.ctx("x"))
    assert not bad.success and "train, test" in bad.output


async def test_server_error_on_one_endpoint_still_reports(hub, harness):
    hub.fail(r"^/parquet$", 500)
    result = await hf_datasets.handle({"dataset": "acme/chat-data"}, harness.ctx("hf_inspect_dataset"))
    assert result.success and "Parquet" not in result.output and "Sample rows" in result.output
