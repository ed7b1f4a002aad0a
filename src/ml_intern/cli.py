"""Command line: the TUI by default, a headless run with a prompt or --headless. Imports lazily."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(
        prog="ml-intern",
        description="An ML engineer in your terminal: research, train on Hugging Face Jobs, ship to the Hub.",
        epilog="Without a prompt ml-intern opens the full-screen app. Exit codes: 0 done, 1 agent or LLM error, "
        "2 bad usage or config, 3 iteration cap reached, 130 interrupted.",
    )
    parser.add_argument("prompt", nargs="?", help="run this task headlessly and exit")
    parser.add_argument("--headless", action="store_true", help="run headless (prompt from stdin when omitted)")
    parser.add_argument("-m", "--model", help="model id (anthropic/..., openai/..., HF router ids, ollama/..., vllm/...)")
    parser.add_argument(
        "--max-iterations", type=int, metavar="N", help="model calls allowed per turn (default 300, -1 unlimited)"
    )
    parser.add_argument("--no-stream", action="store_true", help="do not stream the model's output")
    parser.add_argument("--json", action="store_true", help="headless: print one JSON event per line on stdout")
    parser.add_argument(
        "--approval-mode",
        choices=("ask", "auto", "yolo"),
        help="ask: confirm changes and spending; auto: edits run, shell and spending ask; yolo: nothing asks "
        "(default: ask in the app, yolo headless)",
    )
    parser.add_argument("--config", metavar="PATH", help="config file (JSON or TOML) layered over the defaults")
    parser.add_argument("--resume", nargs="?", const="", metavar="ID", help="resume a saved session (latest if no ID)")
    parser.add_argument("--continue", dest="continue_latest", action="store_true", help="continue the latest session")
    parser.add_argument("--list-sessions", action="store_true", help="list saved sessions, newest first")
    parser.add_argument("--sandbox-tools", action="store_true", help="run bash/read/write/edit in a Hugging Face Space")
    parser.add_argument("--demo", action="store_true", help="play a scripted demo session (no key, no network)")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    sys.stderr.write(f"ml-intern: error: {message}\n")
    return code


def _list_sessions() -> int:
    import time

    from ml_intern.core.session import list_sessions

    sessions = list_sessions()
    if not sessions:
        print("No saved sessions yet.")
        return 0
    print(f"{'#':>3}  {'ID':<22}  {'UPDATED':<16}  {'MSGS':>4}  {'MODEL':<32}  TITLE")
    for index, info in enumerate(sessions, 1):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated)) if info.updated else "-"
        print(f"{index:>3}  {info.session_id:<22}  {when:<16}  {info.messages:>4}  {info.model[:32]:<32}  {info.title}")
    return 0


def _resolve_resume(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """Return (session id to resume, error)."""
    if args.resume is None and not args.continue_latest:
        return None, None
    from ml_intern.core.session import find_session, list_sessions

    if args.resume:
        path = find_session(args.resume)
        if path is None:
            return None, f"no saved session matches '{args.resume}' (see --list-sessions)"
        return path.stem, None
    sessions = list_sessions()
    if not sessions:
        return None, "there is no saved session to continue"
    return sessions[0].session_id, None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ml-intern` command."""
    args = build_parser().parse_args(argv)
    if args.version:
        from ml_intern import __version__

        print(f"ml-intern {__version__}")
        return 0
    if args.list_sessions:
        return _list_sessions()

    headless = args.headless or args.prompt is not None
    prompt = args.prompt
    if headless and prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            return _fail("--headless needs a prompt argument or text on stdin")
        prompt = sys.stdin.read()
    if headless and not (prompt or "").strip():
        return _fail("the prompt is empty")

    from ml_intern.config import ConfigError, load_settings
    from ml_intern.core.llm import validate_model_id

    overrides: dict[str, object] = {"model_name": args.model}
    if args.max_iterations is not None:
        overrides["max_iterations"] = -1 if args.max_iterations < 0 else args.max_iterations
    if args.no_stream:
        overrides["stream"] = False
    if args.approval_mode:
        overrides["approval_mode"] = args.approval_mode
    elif headless and not os.environ.get("ML_INTERN_APPROVAL_MODE"):
        overrides["approval_mode"] = "yolo"
    if args.sandbox_tools:
        overrides["tool_runtime"] = "sandbox"
    try:
        settings = load_settings(args.config, overrides)
    except ConfigError as exc:
        return _fail(str(exc))
    problem = validate_model_id(settings.model_name)
    if problem and not args.demo:
        return _fail(f"invalid model id: {problem}")

    resume_id, error = _resolve_resume(args)
    if error:
        return _fail(error)

    if headless:
        if args.demo:
            return _fail("--demo runs in the app; drop the prompt")
        missing = _missing_credentials(settings.model_name)
        if missing:
            return _fail(missing)
        import asyncio

        from ml_intern.headless.runner import run_headless

        try:
            return asyncio.run(run_headless(settings, prompt or "", json_output=args.json, resume=resume_id))
        except KeyboardInterrupt:
            return 130

    from ml_intern.tui.app import run_tui

    return run_tui(settings, demo=args.demo, resume=resume_id, continue_latest=args.continue_latest)


def _missing_credentials(model_id: str) -> str | None:
    """Explain which credential a headless run lacks, or None."""
    from ml_intern.core.llm import resolve_model

    resolved = resolve_model(model_id)
    if resolved.get("_route") == "hf_router" and not resolved.get("api_key"):
        return (
            f"no Hugging Face token for {model_id}: set HF_TOKEN (or run `hf auth login`), set the provider's API "
            "key, or use a local model such as --model ollama/llama3.1:8b"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
