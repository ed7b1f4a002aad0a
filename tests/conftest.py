"""Shared fixtures: every test gets private XDG dirs; `llm_server` is a scripted model behind `vllm/scripted`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before anything imports litellm: no network look-ups, quiet logs.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

from tests.harness.scripted_llm import ScriptedLLMServer  # noqa: E402

_SECRET_ENV = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GITHUB_TOKEN",
    "SLACK_BOT_TOKEN",
    "ML_INTERN_MODEL",
    "ML_INTERN_APPROVAL_MODE",
    "ML_INTERN_DEFAULT_MODEL",
    "VLLM_BASE_URL",
    "LOCAL_LLM_BASE_URL",
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config, data and state directories at a fresh temp folder and drop real credentials."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    for var in _SECRET_ENV:
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def llm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedLLMServer]:
    """A scripted OpenAI-compatible server; `vllm/scripted` talks to it over real HTTP through litellm."""
    server = ScriptedLLMServer().start()
    monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory for the agent's tools."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_settings(**overrides: Any):
    """Settings for tests: the scripted model, fast retries, yolo unless told otherwise."""
    from ml_intern.config import Settings

    values: dict[str, Any] = {
        "model_name": "vllm/scripted",
        "approval_mode": "yolo",
        "retry_base_delay_s": 0.05,
        "max_retry_after_s": 5.0,
        "llm_timeout_s": 20.0,
        "context_window": 64_000,
    }
    values.update(overrides)
    return Settings(**values)
