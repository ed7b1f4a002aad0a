"""hf_inspect_dataset: one-call audit of a Hub dataset through the dataset viewer API."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools import hf_common as hf

if TYPE_CHECKING:
    import httpx

    from ml_intern.config import Settings

MAX_CELL_CHARS = 150
DEFAULT_SAMPLE_ROWS = 3
MAX_SAMPLE_ROWS = 10

DESCRIPTION = (
    "Inspect a Hub dataset before using it: validity, configs/splits with sizes, schema, parquet files, sample rows "
    "and a summary of chat `messages` columns (roles, turns). Works for gated/private datasets you can access."
)
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "dataset": {"type": "string", "description": "owner/name"},
        "config": {"type": "string"},
        "split": {"type": "string"},
        "sample_rows": {"type": "integer", "description": "default 3, max 10"},
    },
    "required": ["dataset"],
}


class _ViewerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    url = f"{hf.datasets_server_url()}{path}"
    response = await hf.safe_get(client, url, params={k: v for k, v in params.items() if v is not None})
    if response.status_code >= 400:
        try:
            message = response.json().get("error") or response.text
        except Exception:
            message = response.text
        raise _ViewerError(response.status_code, str(message)[:300])
    return response.json()


def _viewer_problem(exc: BaseException, dataset: str) -> str:
    if isinstance(exc, _ViewerError):
        if exc.status in (401, 403):
            token_hint = "" if hf.hf_token() else " No HF_TOKEN is set."
            return (
                f"{dataset} is gated or private ({exc.status}). Accept its conditions on the Hub page with the "
                f"account of your token.{token_hint}"
            )
        if exc.status == 404:
            return f"{dataset} was not found, or the viewer cannot access it (404): {exc}"
        return f"the dataset viewer answered {exc.status} for {dataset}: {exc}"
    return hf.describe_http_error(exc, f"dataset viewer for {dataset}")


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\n", "\\n")
    return (
        text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + f"… (+{len(text) - MAX_CELL_CHARS})"
    )


def _feature_type(feature: Any) -> str:
    if isinstance(feature, list):
        return f"list[{_feature_type(feature[0]) if feature else '?'}]"
    if isinstance(feature, dict):
        kind = feature.get("_type")
        if kind == "Value":
            return str(feature.get("dtype"))
        if kind == "ClassLabel":
            names = feature.get("names") or []
            return f"ClassLabel({', '.join(map(str, names[:8]))}{'…' if len(names) > 8 else ''})"
        if kind in ("Sequence", "List", "LargeList"):
            return f"list[{_feature_type(feature.get('feature'))}]"
        if kind:
            return str(kind)
        return "{" + ", ".join(f"{k}: {_feature_type(v)}" for k, v in feature.items()) + "}"
    return str(feature)


def _messages_summary(column: str, values: list[Any]) -> str | None:
    conversations = [
        v for v in values if isinstance(v, list) and v and all(isinstance(m, dict) and "role" in m for m in v)
    ]
    if not conversations:
        return None
    roles = Counter(str(m.get("role")) for conv in conversations for m in conv)
    turns = [len(conv) for conv in conversations]
    first = Counter(str(conv[0].get("role")) for conv in conversations)
    last = Counter(str(conv[-1].get("role")) for conv in conversations)
    keys = sorted({k for conv in conversations for m in conv for k in m})
    return (
        f"`{column}` is a chat column ({len(conversations)} sampled): roles {dict(roles)}; turns min {min(turns)}, "
        f"avg {sum(turns) / len(turns):.1f}, max {max(turns)}; starts with {dict(first)}; ends with {dict(last)}; "
        f"message keys {keys}"
    )


async def handle(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Audit a dataset in two rounds of parallel requests."""
    dataset = str(args.get("dataset") or "").strip()
    if not dataset:
        raise ToolError("dataset is required (owner/name).")
    try:
        sample_rows = int(args.get("sample_rows") or DEFAULT_SAMPLE_ROWS)
    except (TypeError, ValueError):
        sample_rows = DEFAULT_SAMPLE_ROWS
    sample_rows = max(1, min(sample_rows, MAX_SAMPLE_ROWS))

    async with hf.http_client(timeout=30) as client:
        first_round = await asyncio.gather(
            _get(client, "/is-valid", dataset=dataset),
            _get(client, "/splits", dataset=dataset),
            _get(client, "/parquet", dataset=dataset),
            return_exceptions=True,
        )
        validity, splits_data, parquet_data = first_round
        if isinstance(validity, BaseException) and isinstance(splits_data, BaseException):
            return ToolResult(_viewer_problem(validity, dataset), success=False)
        splits = [] if isinstance(splits_data, BaseException) else splits_data.get("splits", [])
        configs = list(dict.fromkeys(s["config"] for s in splits))
        config = args.get("config") or (configs[0] if configs else None)
        if args.get("config") and configs and config not in configs:
            return ToolResult(
                f"{dataset} has no config {config!r}; configs: {', '.join(configs)}", success=False
            )
        config_splits = [s["split"] for s in splits if s["config"] == config]
        split = args.get("split") or ("train" if "train" in config_splits else (config_splits or [None])[0])
        if args.get("split") and config_splits and split not in config_splits:
            return ToolResult(
                f"{dataset}/{config} has no split {split!r}; splits: {', '.join(config_splits)}",
                success=False,
            )
        info_data, rows_data = await asyncio.gather(
            _get(client, "/info", dataset=dataset, config=config),
            _get(client, "/first-rows", dataset=dataset, config=config, split=split),
            return_exceptions=True,
        )

    out = [f"# {dataset}"]
    if isinstance(validity, BaseException):
        out.append(f"Validity: unknown ({_viewer_problem(validity, dataset)})")
    else:
        flags = [k for k in ("viewer", "preview", "search", "filter", "statistics") if validity.get(k)]
        out.append("Viewer: " + (", ".join(flags) if flags else "not available (rows cannot be previewed)"))

    info = {} if isinstance(info_data, BaseException) else info_data.get("dataset_info", {})
    sizes = {name: s.get("num_examples") for name, s in (info.get("splits") or {}).items()}
    if configs:
        out.append(f"Configs ({len(configs)}): {', '.join(configs[:20])}{' …' if len(configs) > 20 else ''}")
        split_text = ", ".join(f"{s} ({sizes[s]:,} rows)" if sizes.get(s) else s for s in config_splits)
        out.append(f"Splits of {config}: {split_text}")

    features = info.get("features")
    if features:
        out.append("Schema:")
        out.extend(f"  {name}: {_feature_type(feature)}" for name, feature in features.items())
    elif not isinstance(rows_data, BaseException):
        out.append("Schema:")
        out.extend(f"  {f['name']}: {_feature_type(f.get('type'))}" for f in rows_data.get("features", []))

    if not isinstance(parquet_data, BaseException):
        files = parquet_data.get("parquet_files", [])
        if files:
            total = sum(f.get("size") or 0 for f in files)
            out.append(f"Parquet: {len(files)} files, {total / 1e6:.1f} MB")
            out.extend(f"  {f['config']}/{f['split']}: {f['url']}" for f in files[:6])
            if len(files) > 6:
                out.append(f"  … {len(files) - 6} more")

    if isinstance(rows_data, BaseException):
        out.append(f"Sample rows: unavailable ({_viewer_problem(rows_data, dataset)})")
    else:
        rows = [r.get("row", {}) for r in rows_data.get("rows", [])]
        out.append(f"Sample rows ({config}/{split}, {min(sample_rows, len(rows))} of {len(rows)} fetched):")
        for index, row in enumerate(rows[:sample_rows]):
            out.append(f"  [{index}] " + " | ".join(f"{k}={_cell(v)}" for k, v in row.items()))
        columns = {k for row in rows for k in row}
        for column in sorted(columns):
            summary = _messages_summary(column, [row.get(column) for row in rows])
            if summary:
                out.append(summary)
    return ToolResult("\n".join(out))


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """The hf_inspect_dataset tool."""
    return [
        ToolSpec(
            name="hf_inspect_dataset",
            description=DESCRIPTION,
            parameters=PARAMETERS,
            handler=handle,
            risk=Risk.READ,
            read_only=True,
            undoable=False,
        )
    ]
