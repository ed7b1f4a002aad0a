"""explore_hf_docs / fetch_hf_docs, including where the token may go."""

from __future__ import annotations

import pytest

from ml_intern.tools import hf_common, hf_docs
from tests.harness.fake_hub import FakeHub, OtherHost, ToolHarness, hub_environment


@pytest.fixture
def hub(monkeypatch, tmp_path):
    hf_docs.reset_cache()
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        yield fake


@pytest.fixture
def harness(tmp_path):
    return ToolHarness(workdir=tmp_path)


def test_is_hf_host(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:5000")
    assert hf_common.is_hf_host("https://huggingface.co/docs/trl")
    assert hf_common.is_hf_host("https://cdn-lfs.hf.co/x")
    assert hf_common.is_hf_host("https://datasets-server.huggingface.co/splits")
    assert hf_common.is_hf_host("http://127.0.0.1:5000/api/x")
    assert not hf_common.is_hf_host("http://127.0.0.1:5001/api/x")
    assert not hf_common.is_hf_host("http://huggingface.co/docs")  # plain http never gets the token
    assert not hf_common.is_hf_host("https://huggingface.co.evil.com/x")
    assert not hf_common.is_hf_host("https://evilhuggingface.co/x")
    assert not hf_common.is_hf_host("https://example.com/?u=https://huggingface.co")
    assert not hf_common.is_hf_host("https://someone-evil.hf.space/page")  # anyone can host a Space there


async def test_explore_lists_and_searches(hub, harness):
    listing = await hf_docs.explore({"endpoint": "trl"}, harness.ctx("explore_hf_docs"))
    assert "trl docs (3 pages)" in listing.output and "sft_trainer.md" in listing.output
    found = await hf_docs.explore(
        {"endpoint": "trl", "query": "preference pairs DPO"}, harness.ctx("explore_hf_docs")
    )
    first = found.output.splitlines()[1]
    assert "Dpo Trainer" in first
    assert "preference" in found.output


async def test_explore_falls_back_to_sidebar_html(monkeypatch, tmp_path, harness):
    hf_docs.reset_cache()
    with FakeHub(docs_llms_txt=False) as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        found = await hf_docs.explore(
            {"endpoint": "hub", "query": "GPU jobs"}, harness.ctx("explore_hf_docs")
        )
    assert found.success and "/docs/hub/jobs" in found.output.splitlines()[1]


async def test_explore_unknown_section(hub, harness):
    from ml_intern.core.tools import ToolError

    with pytest.raises(ToolError):
        await hf_docs.explore({"endpoint": "nope"}, harness.ctx("explore_hf_docs"))
    missing = hf_docs.explore({"endpoint": "peft"}, harness.ctx("explore_hf_docs"))
    with pytest.raises(ToolError, match="no documentation"):
        await missing


async def test_fetch_adds_md_and_sends_token_only_to_hf(hub, harness):
    page = await hf_docs.fetch({"url": f"{hub.url}/docs/trl/sft_trainer"}, harness.ctx("fetch_hf_docs"))
    assert page.output.startswith("# SFT Trainer")
    assert hub.requests_to(r"/docs/trl/sft_trainer\.md$")[0].authorization == f"Bearer {hub.token}"

    with OtherHost() as other:
        other.add("/docs/lib/page.md", "# elsewhere")
        result = await hf_docs.fetch({"url": f"{other.url}/docs/lib/page"}, harness.ctx("fetch_hf_docs"))
        assert result.output == "# elsewhere"
        assert other.requests and not other.saw_token()


async def test_redirect_from_hub_to_other_host_drops_token(hub, harness):
    with OtherHost() as other:
        other.add("/landing.md", "# landed")
        hub.extra_routes.append(
            (
                "GET",
                __import__("re").compile(r"/docs/trl/moved\.md"),
                lambda r: (302, "", {"Location": f"{other.url}/landing.md"}),
            )
        )
        result = await hf_docs.fetch({"url": f"{hub.url}/docs/trl/moved"}, harness.ctx("fetch_hf_docs"))
        assert result.output == "# landed"
        assert not other.saw_token()
