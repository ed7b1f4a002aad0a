"""hf_repo_files and hf_repo_git: files, branches, tags, PRs and settings of Hub repos."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_intern.core.tools import ApprovalInfo, Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools import hf_common as hf

if TYPE_CHECKING:
    from ml_intern.config import Settings

MAX_READ_CHARS = 50_000
_READ_BYTES = 256 * 1024
_MAX_LIST = 500
REPO_TYPES = ["model", "dataset", "space"]

FILES_DESCRIPTION = (
    "Files in Hub model/dataset/Space repos: list, read (text, 50k chars max), upload text `content` to `path`, "
    "delete `patterns`. Uploads/deletes publish at once unless create_pr."
)
FILES_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"type": "string", "enum": ["list", "read", "upload", "delete"]},
        "repo_id": {"type": "string"},
        "repo_type": {"type": "string", "enum": REPO_TYPES},
        "revision": {"type": "string", "description": "default main"},
        "path": {"type": "string"},
        "content": {"type": "string"},
        "patterns": {"type": "array", "items": {"type": "string"}, "description": "paths or globs"},
        "create_pr": {"type": "boolean"},
        "commit_message": {"type": "string"},
    },
    "required": ["operation", "repo_id"],
}

GIT_OPERATIONS = [
    "create_branch",
    "delete_branch",
    "create_tag",
    "delete_tag",
    "list_refs",
    "create_pr",
    "list_prs",
    "get_pr",
    "merge_pr",
    "close_pr",
    "comment_pr",
    "change_pr_status",
    "create_repo",
    "update_repo",
]
GIT_DESCRIPTION = (
    "Hub repo branches, tags, pull requests, create_repo (private by default), update_repo (private/gated)."
)
_STR: dict[str, Any] = {"type": "string"}
GIT_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"type": "string", "enum": GIT_OPERATIONS},
        "repo_id": _STR,
        "repo_type": {"type": "string", "enum": REPO_TYPES},
        "branch": _STR,
        "from_rev": _STR,
        "tag": _STR,
        "revision": _STR,
        "tag_message": _STR,
        "title": _STR,
        "description": _STR,
        "pr_num": {"type": "integer"},
        "comment": _STR,
        "status": {"type": "string", "enum": ["open", "closed", "all"]},
        "new_status": {"type": "string", "enum": ["open", "closed"]},
        "private": {"type": "boolean"},
        "gated": {"type": "string", "enum": ["auto", "manual", "false"]},
        "space_sdk": {"type": "string", "enum": ["gradio", "streamlit", "docker", "static"]},
    },
    "required": ["operation", "repo_id"],
}
_GIT_READS = {"list_refs", "list_prs", "get_pr"}
_GIT_EDITS = {"create_branch", "create_tag"}


def _op(args: dict[str, Any]) -> str:
    return str(args.get("operation") or "").strip().lower()


def _repo(args: dict[str, Any]) -> tuple[str, str]:
    repo_id = str(args.get("repo_id") or "").strip().strip("/")
    if repo_id.count("/") != 1 and _op(args) != "create_repo":
        raise ToolError(f"repo_id must look like 'owner/name', got {repo_id!r}.")
    repo_type = str(args.get("repo_type") or "model")
    if repo_type not in REPO_TYPES:
        raise ToolError(f"repo_type must be one of {REPO_TYPES}.")
    return repo_id, repo_type


def files_risk(args: dict[str, Any]) -> Risk:
    """Uploads and deletes publish; list and read are reads."""
    return Risk.DESTRUCTIVE if _op(args) in ("upload", "delete") else Risk.READ


def git_risk(args: dict[str, Any]) -> Risk:
    """Reads are free; branch/tag creation is an edit; anything that publishes or removes is destructive."""
    op = _op(args)
    if op in _GIT_READS:
        return Risk.READ
    if op in _GIT_EDITS:
        return Risk.EDIT
    return Risk.DESTRUCTIVE


# ---------------------------------------------------------------------------------------------- hf_repo_files


def describe_files(args: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
    """Preview an upload (path, size, first lines) or a delete (patterns)."""
    op = _op(args)
    repo_id = str(args.get("repo_id") or "")
    repo_type = str(args.get("repo_type") or "model")
    where = f"{repo_type} {repo_id} @ {args.get('revision') or 'main'}"
    where += " (as a PR)" if args.get("create_pr") else ""
    url = hf.repo_url(repo_id, repo_type)
    if op == "upload":
        content = str(args.get("content") or "")
        lines = content.splitlines()
        preview = [
            f"upload {args.get('path')} → {where}",
            url,
            f"{len(content.encode()):,} bytes, {len(lines)} lines",
        ]
        preview += ["---"] + lines[:20] + ([f"... ({len(lines) - 20} more lines)"] if len(lines) > 20 else [])
        return ApprovalInfo(preview="\n".join(preview))
    if op == "delete":
        patterns = _delete_patterns(args)
        return ApprovalInfo(
            preview=f"delete from {where}:\n" + "\n".join(f"  {p}" for p in patterns) + f"\n{url}"
        )
    return ApprovalInfo(preview=f"{op} {where}")


def _delete_patterns(args: dict[str, Any]) -> list[str]:
    patterns = [str(p) for p in args.get("patterns") or []]
    if args.get("path"):
        patterns.append(str(args["path"]))
    return patterns


async def handle_files(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """List, read, upload or delete repo files."""
    op = _op(args)
    repo_id, repo_type = _repo(args)
    revision = str(args.get("revision") or "main")
    api = hf.make_api(ctx)
    what = f"{op} {repo_type} {repo_id}"
    try:
        if op == "list":
            return await _list(api, repo_id, repo_type, revision, args.get("path"))
        if op == "read":
            path = args.get("path")
            if not path:
                raise ToolError("read needs `path`.")
            return await _read(repo_id, repo_type, revision, str(path))
        if op == "upload":
            if not args.get("path") or args.get("content") is None:
                raise ToolError("upload needs `path` and `content`.")
            info = await hf.in_thread(
                api.upload_file,
                path_or_fileobj=str(args["content"]).encode(),
                path_in_repo=str(args["path"]),
                repo_id=repo_id,
                repo_type=repo_type,
                revision=revision,
                commit_message=args.get("commit_message") or f"Upload {args['path']} with ml-intern",
                create_pr=bool(args.get("create_pr")),
            )
            ctx.state.record_side_effect(f"uploaded {args['path']} to {repo_type} {repo_id}")
            return ToolResult(_commit_text("Uploaded " + str(args["path"]), info))
        if op == "delete":
            patterns = _delete_patterns(args)
            if not patterns:
                raise ToolError("delete needs `patterns` (or `path`).")
            info = await hf.in_thread(
                api.delete_files,
                repo_id=repo_id,
                delete_patterns=patterns,
                repo_type=repo_type,
                revision=revision,
                commit_message=args.get("commit_message")
                or f"Delete {', '.join(patterns)[:80]} with ml-intern",
                create_pr=bool(args.get("create_pr")),
            )
            ctx.state.record_side_effect(f"deleted {', '.join(patterns)} from {repo_type} {repo_id}")
            return ToolResult(_commit_text("Deleted " + ", ".join(patterns), info))
    except ToolError:
        raise
    except Exception as exc:
        return ToolResult(hf.describe_http_error(exc, what), success=False)
    raise ToolError(f"unknown operation {args.get('operation')!r}; use list, read, upload or delete.")


def _commit_text(done: str, info: Any) -> str:
    text = f"{done}. Commit {str(getattr(info, 'oid', ''))[:10]}: {getattr(info, 'commit_url', '')}"
    if getattr(info, "pr_url", None):
        text += f"\nPull request: {info.pr_url}"
    return text


async def _list(api: Any, repo_id: str, repo_type: str, revision: str, path: Any) -> ToolResult:
    entries = await hf.in_thread(
        lambda: list(
            api.list_repo_tree(
                repo_id,
                path_in_repo=str(path) if path else None,
                recursive=True,
                repo_type=repo_type,
                revision=revision,
            )
        )
    )
    files = [e for e in entries if hasattr(e, "size") and type(e).__name__ == "RepoFile"]
    if not entries:
        return ToolResult(f"{repo_id} has no files at {path or '/'} ({revision}).")
    lines = [f"{e.path}  ({_size(e.size)})" for e in files[:_MAX_LIST]]
    total = sum(e.size or 0 for e in files)
    more = f"\n... and {len(files) - _MAX_LIST} more files" if len(files) > _MAX_LIST else ""
    return ToolResult(
        f"{repo_type} {repo_id} @ {revision}: {len(files)} files, {_size(total)}\n" + "\n".join(lines) + more
    )


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


async def _read(repo_id: str, repo_type: str, revision: str, path: str) -> ToolResult:
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(repo_id, path, repo_type=repo_type, revision=revision, endpoint=hf.hf_endpoint())
    async with hf.http_client(timeout=60) as client:
        for _ in range(6):
            async with client.stream("GET", url, headers=hf.auth_headers(url)) as response:
                if response.is_redirect and "location" in response.headers:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                if response.status_code >= 400:
                    await response.aread()
                    return ToolResult(_read_error(response, repo_id, path), success=False)
                total = int(response.headers.get("content-length") or 0)
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) >= _READ_BYTES:
                        break
                break
        else:
            return ToolResult(f"read {repo_id}/{path}: too many redirects.", success=False)
    size = max(total, len(data))
    sample = data[:8192]
    if b"\x00" in sample:
        return ToolResult(
            f"{path} is a binary file ({_size(size)}, {size:,} bytes); its content is not shown."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # not just a multi-byte char cut at the read limit
            return ToolResult(
                f"{path} is a binary file ({_size(size)}, {size:,} bytes); its content is not shown."
            )
        text = data[: exc.start].decode("utf-8")
    if len(text) > MAX_READ_CHARS or size > len(data):
        shown = text[:MAX_READ_CHARS]
        return ToolResult(f"{shown}\n... [truncated: showing {len(shown):,} chars of a {size:,}-byte file]")
    return ToolResult(text)


def _read_error(response: Any, repo_id: str, path: str) -> str:
    code = response.headers.get("x-error-code", "")
    status = response.status_code
    if code == "GatedRepo" or (status in (401, 403) and "gated" in response.text.lower()):
        return (
            f"read {repo_id}/{path}: the repo is gated ({status}). Accept its conditions on the Hub page "
            "with the account of your HF_TOKEN."
        )
    if code == "EntryNotFound":
        return f"read {repo_id}/{path}: file not found (404). List the repo to see its files."
    if code in ("RepoNotFound", "RevisionNotFound") or status == 404:
        return (
            f"read {repo_id}/{path}: repo or revision not found (404), or it is private and not accessible."
        )
    if status == 401:
        return f"read {repo_id}/{path}: not authorized (401); private repos need HF_TOKEN with access."
    return f"read {repo_id}/{path}: HTTP {status}."


# ---------------------------------------------------------------------------------------------- hf_repo_git


def describe_git(args: dict[str, Any], ctx: ToolContext) -> ApprovalInfo:
    """Show the repo and the exact change."""
    op = _op(args)
    repo_id = str(args.get("repo_id") or "")
    repo_type = str(args.get("repo_type") or "model")
    details = [
        f"{k}={args[k]}"
        for k in (
            "branch",
            "from_rev",
            "tag",
            "revision",
            "pr_num",
            "title",
            "new_status",
            "private",
            "gated",
            "space_sdk",
        )
        if args.get(k) is not None
    ]
    warnings = []
    if op == "create_repo" and args.get("private") is False:
        warnings.append("The new repo will be PUBLIC.")
    if op == "update_repo" and args.get("private") is False:
        warnings.append("This makes the repo PUBLIC.")
    preview = f"{op} on {repo_type} {repo_id}\n{hf.repo_url(repo_id, repo_type)}"
    if details:
        preview += "\n" + " · ".join(details)
    if args.get("comment"):
        preview += f"\ncomment: {str(args['comment'])[:500]}"
    return ApprovalInfo(preview=preview, warnings=warnings)


def _need(args: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if args.get(k) in (None, "")]
    if missing:
        raise ToolError(f"{_op(args)} needs {', '.join(missing)}.")


async def handle_git(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Run one git-level repo operation."""
    op = _op(args)
    if op not in GIT_OPERATIONS:
        raise ToolError(
            f"unknown operation {args.get('operation')!r}; use one of: {', '.join(GIT_OPERATIONS)}"
        )
    repo_id, repo_type = _repo(args)
    api = hf.make_api(ctx)
    base = {"repo_type": repo_type}
    try:
        text = await _git(api, op, repo_id, repo_type, base, args)
    except ToolError:
        raise
    except Exception as exc:
        return ToolResult(hf.describe_http_error(exc, f"{op} on {repo_type} {repo_id}"), success=False)
    if op not in _GIT_READS:
        ctx.state.record_side_effect(f"hf_repo_git {op} on {repo_type} {repo_id}")
    return ToolResult(text)


async def _git(
    api: Any, op: str, repo_id: str, repo_type: str, base: dict[str, Any], args: dict[str, Any]
) -> str:
    run = hf.in_thread
    if op == "create_branch":
        _need(args, "branch")
        await run(api.create_branch, repo_id, branch=args["branch"], revision=args.get("from_rev"), **base)
        return f"Created branch {args['branch']} in {repo_id}."
    if op == "delete_branch":
        _need(args, "branch")
        await run(api.delete_branch, repo_id, branch=args["branch"], **base)
        return f"Deleted branch {args['branch']} from {repo_id}."
    if op == "create_tag":
        _need(args, "tag")
        await run(
            api.create_tag,
            repo_id,
            tag=args["tag"],
            tag_message=args.get("tag_message"),
            revision=args.get("revision"),
            **base,
        )
        return f"Created tag {args['tag']} in {repo_id}."
    if op == "delete_tag":
        _need(args, "tag")
        await run(api.delete_tag, repo_id, tag=args["tag"], **base)
        return f"Deleted tag {args['tag']} from {repo_id}."
    if op == "list_refs":
        refs = await run(api.list_repo_refs, repo_id, **base)
        branches = ", ".join(f"{b.name} ({b.target_commit[:8]})" for b in refs.branches) or "none"
        tags = ", ".join(f"{t.name} ({t.target_commit[:8]})" for t in refs.tags) or "none"
        return f"{repo_id}\nbranches: {branches}\ntags: {tags}"
    if op == "create_pr":
        _need(args, "title")
        pr = await run(
            api.create_pull_request,
            repo_id,
            title=args["title"],
            description=args.get("description") or "",
            **base,
        )
        return f"Opened PR #{pr.num} '{pr.title}': {hf.repo_url(repo_id, repo_type)}/discussions/{pr.num}"
    if op == "list_prs":
        status = args.get("status") or "open"
        items = await run(
            lambda: list(
                api.get_repo_discussions(
                    repo_id,
                    discussion_type="pull_request",
                    discussion_status=None if status == "all" else status,
                    **base,
                )
            )
        )
        if not items:
            return f"No {status if status != 'all' else ''} pull requests in {repo_id}.".replace("  ", " ")
        return "\n".join(f"#{d.num} [{d.status}] {d.title} by {d.author}" for d in items[:50])
    _need(args, "pr_num") if op in (
        "get_pr",
        "merge_pr",
        "close_pr",
        "comment_pr",
        "change_pr_status",
    ) else None
    if op == "get_pr":
        d = await run(api.get_discussion_details, repo_id, discussion_num=int(args["pr_num"]), **base)
        lines = [f"#{d.num} [{d.status}] {d.title} by {d.author}" + (" (PR)" if d.is_pull_request else "")]
        if d.is_pull_request:
            lines.append(
                f"target {d.target_branch}; conflicts: {', '.join(d.conflicting_files or []) or 'none'}"
            )
        for event in d.events[-20:]:
            content = getattr(event, "content", None) or getattr(event, "new_status", None) or event.type
            lines.append(f"- {event.author}: {str(content)[:500]}")
        if d.diff:
            lines.append("diff:\n" + hf.truncate(d.diff, 5000))
        return "\n".join(lines)
    if op == "merge_pr":
        await run(api.merge_pull_request, repo_id, int(args["pr_num"]), comment=args.get("comment"), **base)
        return f"Merged PR #{args['pr_num']} into {repo_id}."
    if op == "close_pr":
        await run(
            api.change_discussion_status,
            repo_id,
            int(args["pr_num"]),
            "closed",
            comment=args.get("comment"),
            **base,
        )
        return f"Closed PR #{args['pr_num']} in {repo_id}."
    if op == "comment_pr":
        _need(args, "comment")
        await run(api.comment_discussion, repo_id, int(args["pr_num"]), args["comment"], **base)
        return f"Commented on #{args['pr_num']} in {repo_id}."
    if op == "change_pr_status":
        _need(args, "new_status")
        await run(
            api.change_discussion_status,
            repo_id,
            int(args["pr_num"]),
            args["new_status"],
            comment=args.get("comment"),
            **base,
        )
        return f"PR #{args['pr_num']} is now {args['new_status']}."
    if op == "create_repo":
        if repo_type == "space" and not args.get("space_sdk"):
            raise ToolError("create_repo for a space needs space_sdk (gradio, streamlit, docker or static).")
        private = True if args.get("private") is None else bool(args["private"])
        url = await run(
            api.create_repo, repo_id, private=private, space_sdk=args.get("space_sdk"), exist_ok=False, **base
        )
        return f"Created {'private' if private else 'public'} {repo_type} repo: {url}"
    if op == "update_repo":
        gated: Any = args.get("gated")
        if gated == "false":
            gated = False
        if args.get("private") is None and gated is None:
            raise ToolError("update_repo needs `private` and/or `gated`.")
        await run(api.update_repo_settings, repo_id, private=args.get("private"), gated=gated, **base)
        changes = [
            f"private={args['private']}" if args.get("private") is not None else "",
            f"gated={gated}" if gated is not None else "",
        ]
        return f"Updated {repo_id}: {' '.join(c for c in changes if c)}."
    raise ToolError(f"unsupported operation {op}")


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """hf_repo_files and hf_repo_git."""
    return [
        ToolSpec(
            name="hf_repo_files",
            description=FILES_DESCRIPTION,
            parameters=FILES_PARAMETERS,
            handler=handle_files,
            risk=files_risk,
            subject=lambda a: f"{_op(a)} {a.get('repo_id', '')} {a.get('path') or ''}".strip(),
            describe=describe_files,
            undoable=False,
        ),
        ToolSpec(
            name="hf_repo_git",
            description=GIT_DESCRIPTION,
            parameters=GIT_PARAMETERS,
            handler=handle_git,
            risk=git_risk,
            subject=lambda a: f"{_op(a)} {a.get('repo_id', '')}",
            describe=describe_git,
            undoable=False,
        ),
    ]
