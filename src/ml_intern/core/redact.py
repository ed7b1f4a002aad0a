"""Secret scrubbing applied before anything is written to disk or leaves the machine."""

from __future__ import annotations

import re
from typing import Any

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"hf_[A-Za-z0-9]{30,}"), "[REDACTED_HF_TOKEN]"),
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}"), "[REDACTED_ANTHROPIC_KEY]"),
    (re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}"), "[REDACTED_OPENAI_KEY]"),
    (re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"), "[REDACTED_GITHUB_TOKEN]"),
    (re.compile(r"github_pat_[A-Za-z0-9_]{30,}"), "[REDACTED_GITHUB_TOKEN]"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "[REDACTED_AWS_KEY_ID]"),
    (re.compile(r"xox[abposr]-[A-Za-z0-9\-]{10,}"), "[REDACTED_SLACK_TOKEN]"),
    (re.compile(r"AIza[0-9A-Za-z_\-]{35}"), "[REDACTED_GOOGLE_KEY]"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----"), "[REDACTED_PRIVATE_KEY]"),
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(bearer|basic|token)\s+[A-Za-z0-9_\-\.=+/]{8,}"), r"\1\2 [REDACTED]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9_\-\.=+/]{16,}"), "Bearer [REDACTED]"),
    (
        re.compile(
            r"(?i)\b([A-Z0-9_]*(?:TOKEN|API_KEY|APIKEY|SECRET|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?))"
            r"(\s*[:=]\s*)(\"[^\"\s]{4,}\"|'[^'\s]{4,}'|[^\s\"',;]{4,})"
        ),
        r"\1\2[REDACTED]",
    ),
    (re.compile(r"(?i)(aws_secret_access_key\s*[:=]\s*)[A-Za-z0-9/+=]{40}"), r"\1[REDACTED]"),
    (re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s:@]+@"), r"\1[REDACTED]@"),
]


def scrub_text(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """Replace every known secret shape (and the given literal secrets) in a string."""
    for secret in extra_secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "[REDACTED]")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """Return a copy of a JSON-like value with every string scrubbed."""
    if isinstance(value, str):
        return scrub_text(value, extra_secrets)
    if isinstance(value, dict):
        return {k: scrub(v, extra_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, extra_secrets) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v, extra_secrets) for v in value)
    return value


def known_secret_values(environ: dict[str, str]) -> tuple[str, ...]:
    """Collect secret values from the environment (tokens, keys) so they are scrubbed verbatim too."""
    markers = ("TOKEN", "API_KEY", "SECRET", "PASSWORD", "ACCESS_KEY")
    return tuple(v for k, v in environ.items() if any(m in k.upper() for m in markers) and v and len(v) >= 8)
