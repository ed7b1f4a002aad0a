"""Settings: shipped JSON config < user config.toml < --config file < environment and .env < CLI flags."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml_intern import paths

DEFAULT_MODEL = "anthropic/claude-opus-4.8:fal-ai"

_VAR_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A config file or value is unusable; the message names what and where."""


class ApprovalRule(BaseModel):
    """Allow or deny calls to a tool whose subject matches a glob pattern (e.g. `python train.py*`)."""

    tool: str
    """Tool name, or `*` for every tool."""
    pattern: str = "*"
    """Glob matched against the call's subject (the bash command, the file path, ...)."""
    action: Literal["allow", "deny"] = "allow"
    """What to do with a matching call."""


class SlackDestination(BaseModel):
    """A Slack channel ml-intern may post to."""

    model_config = ConfigDict(extra="ignore")

    provider: Literal["slack"] = "slack"
    token: str = ""
    """Bot token (`xoxb-...`); usually `${SLACK_BOT_TOKEN}`."""
    channel: str = ""
    """Channel id or name."""
    allow_agent_tool: bool = False
    """Whether the `notify` tool may send here."""
    allow_auto_events: bool = False
    """Whether approval/error/turn-complete notifications go here automatically."""
    username: str | None = None
    icon_emoji: str | None = None


class MessagingConfig(BaseModel):
    """Out-of-band notifications."""

    model_config = ConfigDict(extra="ignore")

    enabled: bool = False
    auto_event_types: list[str] = Field(default_factory=lambda: ["approval_required", "error", "turn_complete"])
    destinations: dict[str, SlackDestination] = Field(default_factory=dict)


class Settings(BaseModel):
    """Every setting ml-intern reads; unknown keys in config files are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model_name: str = DEFAULT_MODEL
    """litellm model id, Hugging Face router id, or a local prefix (`ollama/`, `vllm/`, `lm_studio/`, `llamacpp/`)."""
    mcpServers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """MCP servers by name: stdio (`command`, `args`, `env`, `cwd`) or http (`url`, `headers`, `transport`:
    http | streamable-http | sse); optional `timeout` (per call, s) and `connect_timeout` (s)."""
    max_iterations: int = 300
    """LLM calls allowed per user turn; -1 for unlimited."""
    approval_mode: Literal["ask", "auto", "yolo"] = "ask"
    """ask: confirm anything that changes or costs; auto: edits run, shell and money ask; yolo: nothing asks."""
    approval_rules: list[ApprovalRule] = Field(default_factory=list)
    """Saved allow/deny rules, checked before the mode."""
    stream: bool = True
    """Stream assistant text as it is generated."""
    context_window: int | None = None
    """Override the model's context window (tokens), for local and unknown models."""
    compact_threshold: float = 0.9
    """Compact when the next request would use this fraction of the context window."""
    max_output_tokens: int | None = None
    """Cap on tokens the model may generate per call."""
    save_sessions: bool = True
    """Save every session under the data directory."""
    share_traces: bool = False
    """Upload redacted traces to your own private dataset on the Hub."""
    personal_trace_repo_template: str = "{hf_user}/ml-intern-sessions"
    """Dataset that receives shared traces."""
    reasoning_effort: str | None = None
    """Reasoning effort sent to providers that accept it (low, medium, high)."""
    tool_runtime: Literal["local", "sandbox"] = "local"
    """Where bash/read/write/edit run: this machine or a Hugging Face Space sandbox."""
    confirm_cpu_jobs: bool = True
    """Whether CPU-only Hugging Face jobs ask for approval."""
    spend_cap_usd: float | None = None
    """Stop auto-approving paid work once the session's estimated spend reaches this."""
    theme: str = "hf-dark"
    """TUI theme name."""
    terminal_notifications: bool = True
    """Ring the bell and send an OSC 9 notification when the app needs you (approval, long turn done, job end)."""
    keymap: dict[str, str] = Field(default_factory=dict)
    """Binding id -> key overrides for the TUI."""
    messaging: MessagingConfig = Field(default_factory=MessagingConfig)
    """Slack notifications."""
    bash_timeout_s: int = 120
    """Default timeout of a bash call."""
    llm_timeout_s: float = 600.0
    """Timeout of one LLM request."""
    llm_stall_timeout_s: float = 120.0
    """Give up on (and retry) a streamed reply that sends nothing for this long."""
    llm_max_retries: int = 4
    """Attempts per LLM call on transient failures."""
    retry_base_delay_s: float = 2.0
    """First back-off delay on transient LLM errors (doubles each attempt)."""
    max_retry_after_s: float = 120.0
    """Longest Retry-After wait honoured before giving up."""
    workdir: str | None = None
    """Working directory of local tools (default: where ml-intern was started)."""


def substitute_env(value: Any, env: dict[str, str], where: str = "config") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; an unset variable without default is an error."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where}: environment variable '{name}' is not set. Export it or add it to your .env file."
            )

        return _VAR_PATTERN.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge dicts recursively; lists and scalars in `override` replace."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into a dict, with errors that name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: invalid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be an object")
    return data


def load_dotenv_files(cwd: Path | None = None) -> None:
    """Load `.env` from the working directory without overriding variables already set."""
    from dotenv import load_dotenv

    load_dotenv((cwd or Path.cwd()) / ".env", override=False)


_ENV_OVERRIDES: dict[str, tuple[str, type]] = {
    "ML_INTERN_MODEL": ("model_name", str),
    "ML_INTERN_APPROVAL_MODE": ("approval_mode", str),
    "ML_INTERN_MAX_ITERATIONS": ("max_iterations", int),
    "ML_INTERN_CONTEXT_WINDOW": ("context_window", int),
    "ML_INTERN_THEME": ("theme", str),
}


def load_settings(
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    use_user_config: bool = True,
    load_dotenv: bool = True,
) -> Settings:
    """Build Settings from every layer; raise ConfigError with a clear message on bad input."""
    if load_dotenv:
        load_dotenv_files()
    environ = dict(os.environ if env is None else env)
    shipped = paths.shipped_configs_dir() / "main_agent_config.json"
    data: dict[str, Any] = read_config_file(shipped) if shipped.exists() else {}
    if use_user_config:
        user_path = paths.user_config_path()
        if user_path.exists():
            data = deep_merge(data, read_config_file(user_path))
    if config_path is not None:
        data = deep_merge(data, read_config_file(Path(config_path).expanduser()))
    data = substitute_env(data, environ)
    for var, (key, kind) in _ENV_OVERRIDES.items():
        if environ.get(var):
            try:
                data[key] = kind(environ[var])
            except ValueError:
                raise ConfigError(f"{var}={environ[var]!r} is not a valid {kind.__name__}") from None
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    from ml_intern.core.notifications import apply_slack_env_defaults

    settings.messaging = apply_slack_env_defaults(settings.messaging, environ)
    return settings


def save_user_settings(changes: dict[str, Any]) -> Path:
    """Merge `changes` into the user's config.toml, written atomically with tomli-w."""
    import tomli_w

    path = paths.user_config_path()
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            current = {}
    merged = deep_merge(current, _drop_none(changes))
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(merged), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value
