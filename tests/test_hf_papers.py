"""hf_papers: Hub papers API, arXiv HTML and Semantic Scholar, online (loopback) and offline."""

from __future__ import annotations

import time

import pytest

from ml_intern.tools import hf_papers
from tests.harness.fake_hub import FakeHub, OtherHost, ToolHarness, closed_port_url, hub_environment

ARXIV_HTML = (
    """<html><head><title>x</title><script>var a=1;</script></head><body>
<h1 class="ltx_title">Direct Preference Optimization</h1>
<div class="ltx_abstract"><h6>Abstract</h6><p>We fine-tune with preferences.</p></div>
<section><h2>1 Introduction</h2><p>Language models <math alttext="\\pi_\\theta"><mi>π</mi></math> are large.</p></section>
<section><h2>2 Method</h2><p>"""
    + ("The DPO loss is simple. " * 600)
    + """</p></section>
</body></html>"""
)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    hf_papers._cache.clear()
    with FakeHub() as fake, OtherHost() as other:
        hub_environment(monkeypatch, fake, tmp_path)
        monkeypatch.setenv("ML_INTERN_ARXIV_BASE_URL", other.url)
        monkeypatch.setenv("ML_INTERN_AR5IV_BASE_URL", closed_port_url())
        monkeypatch.setenv("ML_INTERN_S2_BASE_URL", other.url)
        fake.other = other
        yield fake
        assert not other.saw_token(), "the HF token must never reach arXiv or Semantic Scholar"


@pytest.fixture
def harness(tmp_path):
    return ToolHarness(workdir=tmp_path)


async def papers(harness, **args):
    return await hf_papers.handle(args, harness.ctx("hf_papers"))


async def test_hub_operations(hub, harness):
    trending = await papers(harness, operation="trending", limit=2)
    assert "2501.00001" in trending.output and "2501.00003" not in trending.output
    assert "42 upvotes" in trending.output
    search = await papers(harness, operation="search", query="lora")
    assert "2502.00010" in search.output
    details = await papers(harness, operation="paper_details", arxiv_id="https://arxiv.org/abs/2305.18290v2")
    assert "Ada Lovelace" in details.output and "LoRA" in details.output
    assert hub.requests_to(r"^/api/papers/2305\.18290$")
    from ml_intern.core.tools import ToolError

    with pytest.raises(ToolError, match="not found"):
        await papers(harness, operation="paper_details", arxiv_id="0000.00000")


async def test_linked_resources(hub, harness):
    models = await papers(harness, operation="find_models", arxiv_id="2305.18290")
    assert "org/model-for-2305.18290" in models.output
    everything = await papers(harness, operation="find_all_resources", arxiv_id="2305.18290")
    assert "dataset-for-2305.18290" in everything.output and "Collection for 2305.18290" in everything.output
    query = hub.requests_to(r"^/api/datasets$")[0].query
    assert query["filter"] == ["arxiv:2305.18290"]


async def test_read_paper_sections(hub, harness):
    hub.other.add("/html/2305.18290", ARXIV_HTML)
    toc = await papers(harness, operation="read_paper", arxiv_id="2305.18290")
    assert "Direct Preference Optimization" in toc.output
    assert "1 Introduction" in toc.output and "2 Method" in toc.output
    intro = await papers(harness, operation="read_paper", arxiv_id="2305.18290", section="introduction")
    assert "\\pi_\\theta" in intro.output and "var a" not in intro.output
    method = await papers(harness, operation="read_paper", arxiv_id="2305.18290", section="2")
    assert "truncated" in method.output and len(method.output) < 8200


async def test_read_paper_falls_back_to_hub_abstract(hub, harness):
    result = await papers(harness, operation="read_paper", arxiv_id="2305.18290")
    assert "abstract from the Hub" in result.output


async def test_semantic_scholar_operations_and_cache(hub, harness):
    hub.other.add(
        "/graph/v1/paper/arXiv:2305.18290/citations",
        {
            "data": [
                {
                    "citingPaper": {
                        "title": "Follow-up",
                        "year": 2024,
                        "citationCount": 7,
                        "externalIds": {"ArXiv": "2401.1"},
                    }
                }
            ]
        },
    )
    graph = await papers(harness, operation="citation_graph", arxiv_id="2305.18290", direction="citations")
    assert "Follow-up (arXiv 2401.1) · 2024 · 7 citations" in graph.output
    await papers(harness, operation="citation_graph", arxiv_id="2305.18290", direction="citations")
    assert len([r for r in hub.other.requests if "citations" in r.path]) == 1, (
        "second call is served from cache"
    )
    hub.other.add(
        "/graph/v1/snippet/search", {"data": [{"paper": {"title": "P"}, "snippet": {"text": "DPO works"}}]}
    )
    snippets = await papers(harness, operation="snippet_search", query="dpo")
    assert "DPO works" in snippets.output
    hub.other.add(
        "/recommendations/v1/papers/", {"recommendedPapers": [{"title": "Rec", "citationCount": 1}]}
    )
    rec = await papers(harness, operation="recommend", arxiv_id="2305.18290")
    assert "Rec" in rec.output


async def test_offline_sources_fail_fast_and_friendly(hub, harness, monkeypatch):
    monkeypatch.setenv("ML_INTERN_S2_BASE_URL", closed_port_url())
    monkeypatch.setenv("ML_INTERN_ARXIV_BASE_URL", closed_port_url())
    started = time.monotonic()
    result = await papers(harness, operation="citation_graph", arxiv_id="2305.18290")
    assert time.monotonic() - started < 2.0
    assert not result.success and "unreachable" in result.output and "\n" not in result.output
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    started = time.monotonic()
    offline_read = await papers(harness, operation="read_paper", arxiv_id="2305.18290")
    assert time.monotonic() - started < 2.0
    assert not offline_read.success and "unreachable" in offline_read.output
    trending = await papers(harness, operation="trending")
    assert not trending.success and "unreachable" in trending.output
