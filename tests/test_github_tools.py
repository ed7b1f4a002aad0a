"""github_find_examples, github_list_repos and github_read_file against a loopback GitHub."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_intern.config import Settings
from ml_intern.core.tools import ToolContext, ToolResult, ToolRouter
from ml_intern.tools import github
from tests.harness.fake_github import TOKEN, FakeGitHub

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "source": ["# Fine-tune\n", "Steps below."]},
        {
            "cell_type": "code",
            "source": "from trl import SFTTrainer\ntrainer.train()",
            "outputs": [{"text": "LOSS"}],
        },
        {"cell_type": "raw", "source": ""},
    ],
    "metadata": {"kernelspec": {"language": "python"}},
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.add_repo(
            "huggingface/trl",
            {
                "README.md": "# TRL",
                "trl/trainer/sft_trainer.py": "class SFTTrainer: ...",
                "examples/scripts/sft.py": "\n".join(f"line {i}" for i in range(1, 501)),
                "examples/scripts/dpo.py": "print('dpo')",
                "examples/scripts/grpo_vlm.py": "print('grpo')",
                "examples/notebooks/sft_tutorial.ipynb": json.dumps(NOTEBOOK),
                "docs/logo.png": b"\x89PNG\0\0",
            },
            stars=9000,
            forks=1200,
            description="Train transformer language models with reinforcement learning.",
        )
        server.add_repo("huggingface/transformers", {"README.md": "hi"}, stars=120000, forks=25000)
        server.add_repo(
            "huggingface/peft", {"README.md": "hi"}, stars=15000, forks=1500, pushed_at="2026-05-01"
        )
        server.add_repo("huggingface/secret-lab", {"x.py": "secret"}, private=True)
        server.add_repo("alice/notes", {"big.txt": "x" * 1_100_000, "bin.dat": b"\0\1\2"}, owner_type="User")
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        yield server


@pytest.fixture
def router() -> ToolRouter:
    return ToolRouter(github.tool_specs(Settings()))


async def call(router: ToolRouter, name: str, **arguments: Any) -> ToolResult:
    ctx = ToolContext(tool_name=name, tool_call_id="c1", emit=lambda e: None, state=None, workdir=Path.cwd())
    result, _ = await router.call(name, arguments, ctx)
    return result


async def test_find_examples_ranks_by_keyword(fake: FakeGitHub, router: ToolRouter) -> None:
    result = await call(router, "github_find_examples", repo="trl", keyword="sft")
    assert result.success, result.output
    first = result.output.splitlines()[1]
    assert "examples/scripts/sft.py" in first
    assert "https://github.com/huggingface/trl/blob/main/examples/scripts/sft.py" in first
    assert "examples/notebooks/sft_tutorial.ipynb" in result.output
    assert "dpo.py" not in result.output  # below min_score
    assert "trl/trainer" not in result.output  # not an example directory
    assert "logo.png" not in result.output


async def test_find_examples_without_keyword_lists_example_dirs(fake: FakeGitHub, router: ToolRouter) -> None:
    result = await call(router, "github_find_examples", repo="huggingface/trl", max_results=2)
    assert result.success
    assert result.data["results"] == ["examples/notebooks/sft_tutorial.ipynb", "examples/scripts/dpo.py"]
    assert "2 more" in result.output


async def test_find_examples_suggests_similar_repos_on_404(fake: FakeGitHub, router: ToolRouter) -> None:
    result = await call(router, "github_find_examples", repo="transformer")
    assert not result.success
    assert "not found" in result.output and "huggingface/transformers" in result.output


async def test_list_repos_by_stars_and_by_update(fake: FakeGitHub, router: ToolRouter) -> None:
    by_stars = await call(router, "github_list_repos", owner="huggingface")
    assert by_stars.success
    assert by_stars.data["repos"] == ["huggingface/transformers", "huggingface/peft", "huggingface/trl"]
    assert "★120000" in by_stars.output and "secret-lab" not in by_stars.output
    by_update = await call(router, "github_list_repos", owner="huggingface", sort="updated", limit=1)
    assert by_update.data["repos"] == ["huggingface/peft"]
    search = next(r for r in fake.requests if r.path == "/search/repositories")
    assert search.query["q"] == ["org:huggingface"] and search.query["per_page"] == ["30"]


async def test_read_file_default_window_and_ranges(fake: FakeGitHub, router: ToolRouter) -> None:
    result = await call(router, "github_read_file", repo="huggingface/trl", path="examples/scripts/sft.py")
    assert result.success
    lines = result.output.splitlines()
    assert lines[0] == "huggingface/trl/examples/scripts/sft.py (lines 1-300 of 500)"
    assert lines[1] == "     1\tline 1" and lines[300] == "   300\tline 300"
    assert "call again with line_start=301" in result.output
    window = await call(
        router,
        "github_read_file",
        repo="huggingface/trl",
        path="examples/scripts/sft.py",
        line_start=498,
        line_end=600,
    )
    assert window.output.splitlines()[1:] == ["   498\tline 498", "   499\tline 499", "   500\tline 500"]


async def test_read_notebook_as_markdown_without_outputs(fake: FakeGitHub, router: ToolRouter) -> None:
    result = await call(
        router, "github_read_file", repo="huggingface/trl", path="examples/notebooks/sft_tutorial.ipynb"
    )
    assert result.success
    assert "# Fine-tune" in result.output and "```python" in result.output and "SFTTrainer" in result.output
    assert "LOSS" not in result.output and '"cell_type"' not in result.output


async def test_read_large_binary_and_directory(fake: FakeGitHub, router: ToolRouter) -> None:
    big = await call(router, "github_read_file", repo="alice/notes", path="big.txt")
    assert big.success and "(lines 1-1 of 1)" in big.output and "[1096000 more chars]" in big.output
    assert any(r.path.startswith("/raw/alice/notes") for r in fake.requests)
    binary = await call(router, "github_read_file", repo="alice/notes", path="bin.dat")
    assert "binary file (3 bytes)" in binary.output
    folder = await call(router, "github_read_file", repo="huggingface/trl", path="examples")
    assert "directory" in folder.output and "examples/scripts/" in folder.output


async def test_rate_limit_message_names_reset_time(fake: FakeGitHub, router: ToolRouter) -> None:
    fake.rate_limited_until = time.time() + 600
    result = await call(router, "github_list_repos", owner="huggingface")
    assert not result.success
    assert "rate limit" in result.output and "UTC" in result.output and "GITHUB_TOKEN" in result.output


async def test_missing_token_and_refusal_is_explained(
    fake: FakeGitHub, router: ToolRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = await call(router, "github_read_file", repo="huggingface/secret-lab", path="x.py")
    assert not private.success and "GITHUB_TOKEN" in private.output
    fake.require_token = True
    refused = await call(router, "github_find_examples", repo="trl")
    assert (
        not refused.success
        and "requires authentication" in refused.output
        and "GITHUB_TOKEN" in refused.output
    )
    assert all("authorization" not in r.headers for r in fake.requests)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    allowed = await call(router, "github_read_file", repo="huggingface/secret-lab", path="x.py")
    assert allowed.success and "secret" in allowed.output
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    bad = await call(router, "github_list_repos", owner="huggingface")
    assert not bad.success and "rejected GITHUB_TOKEN" in bad.output


async def test_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, router: ToolRouter) -> None:
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    started = time.monotonic()
    result = await call(router, "github_list_repos", owner="huggingface")
    assert not result.success and "cannot reach GitHub" in result.output
    assert time.monotonic() - started < 5


def test_fuzzy_scores() -> None:
    assert github.match_score("sft", "examples/scripts/sft.py") == 100
    assert github.match_score("grpo vlm", "examples/scripts/grpo_vlm.py") == 100
    assert github.match_score("sft", "examples/scripts/dpo.py") < 60


def test_specs_are_read_only_and_compact() -> None:
    specs = github.tool_specs(Settings())
    assert [s.name for s in specs] == ["github_find_examples", "github_list_repos", "github_read_file"]
    for spec in specs:
        assert spec.read_only and spec.risk_for({}) == 0
        assert len(json.dumps(spec.llm_schema())) < 900  # roughly 180 tokens
