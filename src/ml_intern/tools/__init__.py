"""Built-in tools: each module in BUILTIN_TOOL_MODULES exposes `tool_specs(settings) -> list[ToolSpec]`."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from ml_intern.core.tools import ToolRouter, ToolSpec

if TYPE_CHECKING:
    from ml_intern.config import Settings

# Order is the order the model sees: runtime tools first, then research, Hub, GitHub, web.
BUILTIN_TOOL_MODULES = (
    "local",  # bash, read, write, edit on this machine (tool_runtime == "local")
    "sandbox",  # sandbox_create + bash/read/write/edit in a Space (tool_runtime == "sandbox")
    "plan",  # plan_tool
    "research",  # research sub-agent
    "hf_docs",  # explore_hf_docs, fetch_hf_docs
    "hf_papers",  # hf_papers
    "hf_datasets",  # hf_inspect_dataset
    "hf_jobs",  # hf_jobs
    "hf_repos",  # hf_repo_files, hf_repo_git
    "github",  # github_find_examples, github_list_repos, github_read_file
    "web",  # web_search, web_fetch
    "notify",  # notify
)


def builtin_tool_specs(settings: Settings) -> list[ToolSpec]:
    """Collect the specs of every built-in tool module that exists in this build."""
    specs: list[ToolSpec] = []
    for name in BUILTIN_TOOL_MODULES:
        qualified = f"{__name__}.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        module = importlib.import_module(qualified)
        specs.extend(module.tool_specs(settings))
    return specs


def build_router(settings: Settings) -> ToolRouter:
    """Return a router with every built-in tool registered."""
    return ToolRouter(builtin_tool_specs(settings))
