"""Where ml-intern keeps its files: XDG config, data and state directories, created private."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "ml-intern"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    base = Path(value).expanduser() if value else Path.home() / fallback
    return base / APP_NAME


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def config_dir() -> Path:
    """Return `$XDG_CONFIG_HOME/ml-intern` (created 0o700)."""
    return _ensure(_xdg("XDG_CONFIG_HOME", ".config"))


def data_dir() -> Path:
    """Return `$XDG_DATA_HOME/ml-intern` (created 0o700)."""
    return _ensure(_xdg("XDG_DATA_HOME", ".local/share"))


def state_dir() -> Path:
    """Return `$XDG_STATE_HOME/ml-intern` (created 0o700)."""
    return _ensure(_xdg("XDG_STATE_HOME", ".local/state"))


def sessions_dir() -> Path:
    """Return the directory saved sessions live in."""
    return _ensure(data_dir() / "sessions")


def snapshots_dir() -> Path:
    """Return the directory undo snapshots live in (outside the user's git)."""
    return _ensure(data_dir() / "snapshots")


def logs_dir() -> Path:
    """Return the directory for log files (MCP server stderr, debug logs)."""
    return _ensure(state_dir() / "logs")


def spill_dir() -> Path:
    """Return the directory where oversized tool outputs are written in full."""
    return _ensure(state_dir() / "outputs")


def user_config_path() -> Path:
    """Return the user's config.toml path (may not exist)."""
    return config_dir() / "config.toml"


def _package_data(name: str) -> Path:
    here = Path(__file__).resolve().parent
    source_tree = here.parents[1] / name  # src/ml_intern -> repo root
    if source_tree.is_dir():
        return source_tree
    return here / "_data" / name


def shipped_configs_dir() -> Path:
    """Return the folder holding the shipped `configs/*.json`."""
    return _package_data("configs")


def shipped_themes_dir() -> Path:
    """Return the folder holding the shipped theme files."""
    return _package_data("themes")
