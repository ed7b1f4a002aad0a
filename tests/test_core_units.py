"""Unit tests of the core's pure pieces: model routing, error classes, policy, guard, redaction, config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml_intern.config import ApprovalRule, ConfigError, load_settings, save_user_settings, substitute_env
from ml_intern.core.approval import ApprovalPolicy, suggest_rule_pattern
from ml_intern.core.doom_loop import DoomLoopGuard, canonical_arguments, signature
from ml_intern.core.llm import classify_error, resolve_model, validate_model_id
from ml_intern.core.redact import scrub, scrub_text
from ml_intern.core.tools import Risk, parse_tool_call

# ---------------------------------------------------------------- model routing


@pytest.mark.parametrize(
    ("model", "base_env", "default_base"),
    [
        ("ollama/llama3.1:8b", "OLLAMA_BASE_URL", "http://localhost:11434/v1"),
        ("vllm/qwen", "VLLM_BASE_URL", "http://localhost:8000/v1"),
        ("lm_studio/phi", "LMSTUDIO_BASE_URL", "http://127.0.0.1:1234/v1"),
        ("llamacpp/gemma", "LLAMACPP_BASE_URL", "http://localhost:8080/v1"),
    ],
)
def test_local_prefixes_use_their_env_then_shared_then_default(model: str, base_env: str, default_base: str) -> None:
    name = model.split("/", 1)[1]
    assert resolve_model(model, env={})["api_base"] == default_base
    assert resolve_model(model, env={})["model"] == f"openai/{name}"
    shared = resolve_model(model, env={"LOCAL_LLM_BASE_URL": "http://box:9/v1/", "LOCAL_LLM_API_KEY": "k1"})
    assert shared["api_base"] == "http://box:9/v1" and shared["api_key"] == "k1"
    key_env = base_env.replace("BASE_URL", "API_KEY")
    own = resolve_model(
        model, env={base_env: "http://own:1", "LOCAL_LLM_BASE_URL": "http://box:9", key_env: "k2", "LOCAL_LLM_API_KEY": "k1"}
    )
    assert own["api_base"] == "http://own:1/v1" and own["api_key"] == "k2"


def test_router_ids_go_to_the_hf_router_with_the_token() -> None:
    resolved = resolve_model("moonshotai/Kimi-K2.6", env={"HF_TOKEN": "hf_x"})
    assert resolved["model"] == "openai/moonshotai/Kimi-K2.6"
    assert resolved["api_base"] == "https://router.huggingface.co/v1"
    assert resolved["api_key"] == "hf_x"
    tagged = resolve_model("anthropic/claude-opus-4.8:fal-ai", env={"HF_TOKEN": "hf_x", "ANTHROPIC_API_KEY": "a"})
    assert tagged["_route"] == "hf_router"


def test_direct_provider_ids_with_their_key_bypass_the_router() -> None:
    resolved = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "sk-ant-x"})
    assert resolved == {"model": "anthropic/claude-sonnet-4-5", "_route": "direct"}
    assert resolve_model("openai/gpt-5", env={"OPENAI_API_KEY": "x"})["_route"] == "direct"


def test_a_local_model_needs_no_hf_token() -> None:
    resolved = resolve_model("ollama/llama3.1:8b", env={})
    assert "hf_" not in resolved["api_key"]


@pytest.mark.parametrize("bad", ["", "gpt4", "has space/x", "ollama/", "vllm/"])
def test_invalid_model_ids_are_explained(bad: str) -> None:
    assert validate_model_id(bad)


class _Err(Exception):
    def __init__(self, message: str, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.response = type("R", (), {"headers": headers or {}, "status_code": status})()


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (_Err("Rate limit reached", 429, {"retry-after": "7"}), "rate_limit", True),
        (_Err("Service Unavailable", 503), "transient", True),
        (_Err("bad gateway", 502), "transient", True),
        (_Err("Invalid API key", 401), "auth", False),
        (_Err("Payment required: credits exhausted", 402), "credits", False),
        (_Err("model_not_found: no such model", 404), "model_not_found", False),
        (_Err("This model's maximum context length is 8192 tokens", 400), "context_overflow", False),
        (_Err("prompt is too long"), "context_overflow", False),
        (ConnectionError("Connection reset by peer"), "transient", True),
        (_Err("invalid request: tools[0] is malformed", 400), "bad_request", False),
    ],
)
def test_error_classification(exc: Exception, kind: str, retryable: bool) -> None:
    verdict = classify_error(exc)
    assert (verdict.kind, verdict.retryable) == (kind, retryable)


def test_retry_after_header_is_read() -> None:
    assert classify_error(_Err("429", 429, {"Retry-After": "7"})).retry_after_s == 7.0


# ---------------------------------------------------------------- tool-call parsing


@pytest.mark.parametrize("raw", ['{"path": ', "[]", '"x"', "null", "42"])
def test_unusable_arguments_become_readable_errors(raw: str) -> None:
    parsed = parse_tool_call("c1", "read", raw, ["read"])
    assert parsed.arguments is None
    assert parsed.error and "NOT executed" in parsed.error


def test_unknown_tool_names_the_available_ones() -> None:
    parsed = parse_tool_call("c1", "rm_rf", "{}", ["read", "write"])
    assert parsed.error and "unknown tool 'rm_rf'" in parsed.error and "read" in parsed.error


# ---------------------------------------------------------------- approval policy


@pytest.mark.parametrize(
    ("mode", "risk", "expected"),
    [
        ("ask", Risk.READ, "run"),
        ("ask", Risk.EDIT, "ask"),
        ("ask", Risk.EXEC, "ask"),
        ("ask", Risk.EXTERNAL, "ask"),
        ("auto", Risk.EDIT, "run"),
        ("auto", Risk.EXEC, "ask"),
        ("auto", Risk.COST, "ask"),
        ("auto", Risk.DESTRUCTIVE, "ask"),
        ("yolo", Risk.EXEC, "run"),
        ("yolo", Risk.COST, "run"),
        ("yolo", Risk.ALWAYS_ASK, "ask"),
    ],
)
def test_modes(mode: str, risk: Risk, expected: str) -> None:
    assert ApprovalPolicy(mode).decide("t", risk, "s").action == expected  # type: ignore[arg-type]


def test_rules_allow_and_deny_before_the_mode() -> None:
    policy = ApprovalPolicy("ask", [ApprovalRule(tool="bash", pattern="python train.py*", action="allow")])
    assert policy.decide("bash", Risk.EXEC, "python train.py --epochs 1").action == "run"
    assert policy.decide("bash", Risk.EXEC, "rm -rf /").action == "ask"
    policy.add_rule(ApprovalRule(tool="bash", pattern="rm *", action="deny"))
    assert policy.decide("bash", Risk.EXEC, "rm -rf /").action == "deny"
    yolo = ApprovalPolicy("yolo", [ApprovalRule(tool="*", pattern="*secret*", action="deny")])
    assert yolo.decide("read", Risk.READ, "/home/me/secret.txt").action == "deny"


def test_spend_cap_makes_paid_calls_ask_even_in_yolo() -> None:
    policy = ApprovalPolicy("yolo")
    assert policy.decide("hf_jobs", Risk.COST, "run a100", over_budget=True).action == "ask"
    assert policy.decide("read", Risk.READ, "x", over_budget=True).action == "run"


def test_suggested_rule_for_bash_keeps_the_program_and_first_argument() -> None:
    assert suggest_rule_pattern("bash", "python train.py --lr 1e-4") == "python train.py*"
    assert suggest_rule_pattern("write", "/tmp/a.py") == "/tmp/a.py"


# ---------------------------------------------------------------- doom loop


def test_identical_calls_fire_once_per_streak_and_a_new_streak_fires_again() -> None:
    guard = DoomLoopGuard()
    fired = []
    for _ in range(8):
        guard.record(signature("bash", '{"command": "ls"}', "same"))
        fired.append(guard.check() is not None)
    assert fired == [False, False, True, False, False, False, False, False]
    guard.record(signature("read", '{"path": "x"}', "other"))
    assert guard.check() is None
    for _ in range(3):
        guard.record(signature("bash", '{"command":"ls"}', "same"))
        last = guard.check()
    assert last is not None and last.kind == "identical"


def test_polling_with_changing_results_is_not_a_loop() -> None:
    guard = DoomLoopGuard()
    for i in range(10):
        guard.record(signature("hf_jobs", '{"operation": "inspect"}', f"status {i}"))
        assert guard.check() is None


def test_cycles_are_detected_and_key_order_does_not_matter() -> None:
    assert canonical_arguments('{"b": 1, "a": 2}') == canonical_arguments('{ "a":2,"b":1 }')
    guard = DoomLoopGuard()
    findings = []
    for _ in range(2):
        for name, args in (("read", '{"path":"a"}'), ("edit", '{"path":"a","old_str":"x"}')):
            guard.record(signature(name, args, "r"))
            findings.append(guard.check())
    hits = [f for f in findings if f]
    assert len(hits) == 1 and hits[0].kind == "cycle" and hits[0].tools == ["read", "edit"]


# ---------------------------------------------------------------- redaction


SECRETS = {
    "hf": "hf_" + "a1B2c3D4e5" * 4,
    "openai": "sk-proj-" + "Z9y8X7w6V5" * 5,
    "anthropic": "sk-ant-api03-" + "Qq1Ww2Ee3R" * 4,
    "github": "ghp_" + "0123456789abcdefghij" * 2,
    "github_pat": "github_pat_" + "11ABCDEFG0" * 5,
    "aws": "AKIAABCDEFGHIJKLMNOP",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_known_secret_shapes_are_redacted(name: str) -> None:
    secret = SECRETS[name]
    cleaned = scrub_text(f"use {secret} please")
    assert secret not in cleaned and "REDACTED" in cleaned


def test_bearer_headers_and_token_assignments_are_redacted() -> None:
    text = "curl -H 'Authorization: Bearer abcdefghijklmnop1234' && export WANDB_API_KEY=12345678abcd MY_TOKEN=s3cr3tvalue"
    cleaned = scrub_text(text)
    assert "abcdefghijklmnop1234" not in cleaned
    assert "12345678abcd" not in cleaned and "s3cr3tvalue" not in cleaned
    assert "WANDB_API_KEY=[REDACTED]" in cleaned


def test_scrub_copies_nested_values_and_keeps_non_strings() -> None:
    data = {"a": [SECRETS["hf"], 3, {"b": SECRETS["github"]}], "n": None}
    cleaned = scrub(data)
    assert SECRETS["hf"] in data["a"][0]  # input untouched
    assert cleaned["a"][1] == 3 and cleaned["n"] is None
    assert "REDACTED" in cleaned["a"][2]["b"]


# ---------------------------------------------------------------- config


def test_env_substitution_with_defaults_and_missing_names() -> None:
    assert substitute_env({"x": "${A}-${B:-dflt}"}, {"A": "1"}) == {"x": "1-dflt"}
    with pytest.raises(ConfigError, match="'MISSING_VAR'"):
        substitute_env({"headers": {"Authorization": "Bearer ${MISSING_VAR}"}}, {})


def test_layers_cli_over_config_file_over_user_config(tmp_path: Path) -> None:
    save_user_settings({"model_name": "ollama/from-user", "theme": "hf-light"})
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model_name": "vllm/from-file", "context_window": 4096}))
    settings = load_settings(config, env={}, load_dotenv=False)
    assert settings.model_name == "vllm/from-file" and settings.theme == "hf-light" and settings.context_window == 4096
    settings = load_settings(config, {"model_name": "vllm/from-cli"}, env={}, load_dotenv=False)
    assert settings.model_name == "vllm/from-cli"


def test_bad_config_files_give_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json"):
        load_settings(broken, env={}, load_dotenv=False)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.json", env={}, load_dotenv=False)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('max_iterations = "many"\n')
    with pytest.raises(ConfigError, match="max_iterations"):
        load_settings(wrong, env={}, load_dotenv=False)


def test_user_settings_are_written_atomically_and_privately(isolated_home: Path) -> None:
    path = save_user_settings({"theme": "high-contrast", "approval_rules": [{"tool": "bash", "pattern": "ls*", "action": "allow"}]})
    assert path.read_text().count("high-contrast") == 1
    assert (path.stat().st_mode & 0o777) == 0o600
    assert str(path).startswith(str(isolated_home))
    settings = load_settings(None, env={}, load_dotenv=False)
    assert settings.approval_rules[0].pattern == "ls*"


# ---------------------------------------------------------------- architecture


def test_core_and_headless_never_import_textual() -> None:
    code = (
        "import sys, ml_intern.core.agent, ml_intern.core.loop, ml_intern.headless.runner, ml_intern.tools; "
        "print(','.join(m for m in ('textual', 'rich') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_cli_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from ml_intern import cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'])\n"
        "print(','.join(m for m in ('litellm', 'textual', 'pydantic', 'huggingface_hub', 'mcp') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
