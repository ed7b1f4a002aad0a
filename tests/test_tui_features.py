"""Pilot tests for the TUI features around the conversation: token prompt, /model, /mcp, resume, demo Runs pane,
copy, find and terminal notifications, against the real Agent (scripted model) and loopback or real servers."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList, Static

from ml_intern import paths
from ml_intern.core.context import History
from ml_intern.core.session import SessionStore
from ml_intern.tui.app import MLInternApp
from ml_intern.tui.screens import main as main_module
from ml_intern.tui.screens.approval import ApprovalScreen
from ml_intern.tui.screens.dialogs import ModelPicker
from ml_intern.tui.screens.token import TokenScreen
from ml_intern.tui.widgets.conversation import AssistantMessage, Notice, ToolCallBlock, UserMessage
from ml_intern.tui.widgets.findbar import FindBar
from tests.harness.fake_hub import TOKEN, FakeHub, hub_environment
from tests.test_tui_app import Step, event_types, main_screen, make_app, make_settings, send, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def notices(screen: Any) -> list[str]:
    """Text of every notice in the transcript."""
    return [str(n.content) for n in screen.conversation.query_children(Notice)]


# --- first-launch token prompt ----------------------------------------------------------------------------------


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A fake Hub, no token anywhere, and huggingface_hub's token files in a temp folder."""
    import huggingface_hub.constants as hf_constants

    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path, token=None)
        monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token" / "token"))
        monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-token" / "stored_tokens"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield fake


def router_app(work: Path) -> MLInternApp:
    app, _ = make_app(workdir=work, settings=make_settings(model_name="moonshotai/Kimi-K2.6"), token_prompt=True,
                      history_file=None)
    return app


async def test_token_prompt_rejects_a_bad_token_then_saves_a_good_one(work: Path, hub: FakeHub, tmp_path: Path) -> None:
    from huggingface_hub import get_token

    assert get_token() is None
    app = router_app(work)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TokenScreen) and bool(app.screen.query("#token-input")))
        field = app.screen.query_one("#token-input", Input)
        assert field.password, "the token is masked"
        field.value = "hf_not_a_valid_token"
        await pilot.press("enter")
        error = app.screen.query_one("#token-error", Static)
        await wait_for(pilot, lambda: "401" in str(error.content))
        assert "hf_not_a_valid_token" not in str(error.content)
        assert isinstance(app.screen, TokenScreen), "a rejected token keeps the dialog open"
        assert get_token() is None
        field.value = TOKEN
        await pilot.press("enter")
        screen = main_screen(app)
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: any("Signed in to Hugging Face as" in n for n in notices(screen)))
        assert TOKEN not in " ".join(notices(screen)), "the token is never echoed"
    assert get_token() == TOKEN
    assert os.environ.get("HF_TOKEN") == TOKEN
    assert (tmp_path / "hf-token" / "token").read_text().strip() == TOKEN
    assert hub.requests_to(r"/api/whoami-v2"), "the token was checked against HF_ENDPOINT"


async def test_token_prompt_escape_skips_with_a_hint(work: Path, hub: FakeHub, tmp_path: Path) -> None:
    app = router_app(work)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TokenScreen) and bool(app.screen.query("#token-input")))
        await pilot.press("escape")
        screen = main_screen(app)
        await wait_for(pilot, lambda: any("No Hugging Face token" in n for n in notices(screen)))
        assert app.screen is screen
        assert any("HF_TOKEN" in n and "/model" in n for n in notices(screen))
    assert not (tmp_path / "hf-token" / "token").exists()
    assert not hub.requests_to(r"/api/whoami-v2")


async def test_no_token_prompt_for_a_local_model(work: Path, hub: FakeHub) -> None:
    app, _ = make_app(workdir=work, settings=make_settings(model_name="ollama/llama3.1:8b"), token_prompt=True,
                      history_file=None)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.status.info.connected)
        await pilot.pause(0.2)
        assert app.screen is screen


# --- /model -------------------------------------------------------------------------------------------------------


async def test_model_switch_persists_and_a_bad_id_keeps_the_old_model(work: Path) -> None:
    app, _ = make_app(workdir=work, history_file=None)
    messages: list[Any] = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.status.info.connected)
        await send(pilot, "/model not-a-model-id")
        await wait_for(pilot, lambda: "error" in event_types(messages))
        await pilot.pause(0.05)
        assert screen.status.info.model == "scripted/test-model"
        assert any("Cannot switch model" in n and "Still using scripted/test-model" in n for n in notices(screen))
        assert not paths.user_config_path().exists()

        await send(pilot, "/model vllm/other-model")
        await wait_for(pilot, lambda: screen.status.info.model == "vllm/other-model")
        await wait_for(pilot, lambda: paths.user_config_path().exists())
        assert screen.agent.settings.model_name == "vllm/other-model"  # type: ignore[union-attr]
    assert tomllib.loads(paths.user_config_path().read_text())["model_name"] == "vllm/other-model"


async def test_model_picker_lists_suggestions_marks_current_and_accepts_typed_ids(work: Path) -> None:
    from ml_intern.core.llm import SUGGESTED_MODELS

    app, _ = make_app(workdir=work, history_file=None)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.status.info.connected)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker))
        options = app.screen.query_one("#model-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "scripted/test-model" and "(current)" in str(options.get_option_at_index(0).prompt)
        assert [model for model, _ in SUGGESTED_MODELS] == ids[1:]
        assert "Kimi K2.6" in str(options.get_option_at_index(ids.index("moonshotai/Kimi-K2.6:novita")).prompt)
        await pilot.press(*"llama")
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["ollama/llama3.1:8b"]
        app.screen.query_one("#model-input", Input).value = "vllm/typed-model"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.status.info.model == "vllm/typed-model")
        await wait_for(pilot, lambda: paths.user_config_path().exists())


# --- /mcp ---------------------------------------------------------------------------------------------------------


async def test_mcp_lists_a_real_server_and_reconnects_it(work: Path) -> None:
    time_server = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
    app, _ = make_app(workdir=work, settings=make_settings(mcpServers={"time": time_server}), history_file=None)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None and "mcp" in screen.agent.services)  # type: ignore[attr-defined]
        manager = screen.agent.services["mcp"]  # type: ignore[union-attr]
        await wait_for(pilot, lambda: manager.status()[0].state == "connected", timeout=30)
        await send(pilot, "/mcp")
        await wait_for(pilot, lambda: any(n.startswith("MCP servers (1)") for n in notices(screen)))
        listing = next(n for n in notices(screen) if n.startswith("MCP servers"))
        assert "time  (stdio)  connected" in listing and "get_current_time" in listing
        await send(pilot, "/mcp reconnect time")
        await wait_for(pilot, lambda: sum("time  (stdio)  connected" in n for n in notices(screen)) >= 2, timeout=30)
        await send(pilot, "/mcp reconnect nope")
        await wait_for(pilot, lambda: any("No MCP server named 'nope'" in n for n in notices(screen)))


async def test_mcp_says_when_none_are_configured(work: Path) -> None:
    app, _ = make_app(workdir=work, history_file=None)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None)
        await send(pilot, "/mcp")
        await wait_for(pilot, lambda: any("No MCP servers are configured" in n for n in notices(screen)))


# --- resume shows the conversation ----------------------------------------------------------------------------------


def save_session_with_tools(session_id: str) -> None:
    """A saved session with a task, a tool call and its output, a summary, a plan and a final answer."""
    store = SessionStore(session_id)
    store.write_meta(model="scripted/test-model", workdir="/tmp", created=True)
    history = History("system")
    history.add_user("fine-tune bert on imdb")
    history.add_assistant("Checking the data first.", tool_calls=[
        {"id": "call_a", "type": "function",
         "function": {"name": "bash", "arguments": '{"command": "wc -l imdb.csv"}'}},
    ])
    history.add_tool_result("call_a", "bash", "50000 imdb.csv")
    history.add_injected("[ml-intern] internal guidance the user never typed")
    history.add_assistant("Done: **91% accuracy** after one epoch.")
    for record in history.to_records(1):
        store.write_message(record)
    store.write_event({"type": "plan_update", "plan": [
        {"id": "1", "content": "Train bert", "status": "completed"}]})
    store.write_meta(title="IMDB sentiment")
    store.close()


async def test_resume_renders_messages_tool_calls_and_plan(work: Path) -> None:
    save_session_with_tools("20260101-090000-cccccc")
    app, client = make_app([("Continuing.", [])], workdir=work, resume="20260101-090000-cccccc", history_file=None)
    messages: list[Any] = []
    async with app.run_test(size=(130, 40), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: "resume_complete" in event_types(messages))
        await wait_for(pilot, lambda: bool(screen.conversation.query_children(ToolCallBlock)))
        await pilot.pause(0.1)
        assert [m.text for m in screen.conversation.query_children(UserMessage)] == ["fine-tune bert on imdb"]
        replies = [a.source for a in screen.conversation.query_children(AssistantMessage)]
        assert replies == ["Checking the data first.", "Done: **91% accuracy** after one epoch."]
        block = screen.conversation.query_one(ToolCallBlock)
        assert block.tool == "bash" and block.output == "50000 imdb.csv" and block.state == "done"
        assert "internal guidance" not in " ".join(str(w.render()) for w in screen.conversation.children)
        assert screen.timeline.records["call_a"].output == "50000 imdb.csv"
        assert "Train bert" in str(screen.query_one("#plan").render())
        assert any("Resumed session 20260101-090000-cccccc" in n for n in notices(screen))
        await send(pilot, "go on")
        await wait_for(pilot, lambda: len(client.requests) == 1 and not screen.working)
        assert [m.text for m in screen.conversation.query_children(UserMessage)][-1] == "go on"


# --- demo: the Runs pane ------------------------------------------------------------------------------------------


async def test_demo_runs_a_local_job_into_the_runs_pane(tmp_path: Path) -> None:
    from ml_intern.config import Settings
    from ml_intern.demo import DEMO_JOB_HARDWARE, DEMO_JOB_TITLE, DemoLLM, build_demo_agent

    settings = Settings(theme="hf-dark")

    def factory() -> Any:
        return build_demo_agent(settings, llm=DemoLLM(chunk_delay=0.0), workdir=tmp_path)

    app = MLInternApp(settings, demo=True, agent_factory=factory, history_file=None, save_settings=False)
    messages: list[Any] = []
    async with app.run_test(size=(140, 42), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.status.info.connected)
        await pilot.press("enter")
        for _ in range(3):
            await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), 30)
            modal = app.screen
            await pilot.press("y")
            await wait_for(pilot, lambda: app.screen is not modal)  # noqa: B023 - checked at once
        await wait_for(pilot, lambda: "turn_complete" in event_types(messages) and not screen.working, 30)
        approvals = event_types(messages).count("approval_required")
        assert approvals == 3, "write, bash and the demo job ask first"
        updates = [m.event for m in messages if getattr(getattr(m, "event", None), "type", "") == "job_update"]
        assert updates and updates[0].status == "RUNNING" and updates[-1].status == "COMPLETED"
        runs = screen.query_one("#runs")
        assert runs.display and screen.has_class("-show-runs")
        (job_id, run), = runs.runs.items()  # type: ignore[attr-defined]
        assert run.status == "COMPLETED" and run.hardware == DEMO_JOB_HARDWARE and run.cost() == 0.0
        assert len(run.loss) == 20 and run.loss[-1] < run.loss[10] < run.loss[0], "a curve, not a cliff"
        assert "loss" in run.metrics
        assert "loss" in str(runs.query_one("#runs-metric").render())
        log_text = "\n".join(runs.query_one("#runs-log").lines)
        assert "epoch 20/20" in log_text and "exit code 0" in log_text
        assert log_text.count("$ python train.py 20 0.001") == 1
        assert ("Job completed", f"{DEMO_JOB_TITLE} ({DEMO_JOB_HARDWARE})") in app.terminal_notifications
        report = screen.conversation.query_children(AssistantMessage).last().source
        assert job_id in report and "COMPLETED" in report


# --- copy and find ------------------------------------------------------------------------------------------------

ANSWER = "Here is the fix:\n\n```python\nprint('first')\n```\n\nand a check:\n\n```bash\npytest -q\n```\n"


async def test_copy_focused_reply_code_blocks_and_last_reply(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = make_app([(ANSWER, [])], workdir=work, history_file=None)
    copied: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "fix it")
        await wait_for(pilot, lambda: bool(screen.conversation.query_children(AssistantMessage)) and not screen.working)
        screen.prompt.focus()
        await pilot.press("c")
        assert copied == [] and screen.prompt.text == "c", "typing c in the prompt types"
        screen.prompt.clear()
        reply = screen.conversation.query_children(AssistantMessage).last()
        reply.focus()
        await pilot.press("c")
        assert copied[-1] == ANSWER
        await pilot.press("b")
        assert copied[-1] == "print('first')"
        await pilot.press("b")
        assert copied[-1] == "pytest -q"
        screen.conversation.query_children(UserMessage).last().focus()
        await pilot.press("c")
        assert copied[-1] == "fix it"
        await pilot.press("o", "k")
        assert screen.focused is screen.prompt and screen.prompt.text == "ok", "other keys type into the prompt"
        screen.prompt.clear()
        commands = {c.title: c for c in app.get_system_commands(screen)}
        await commands["Copy last reply"].callback()
        assert copied[-1] == ANSWER
        await commands["Copy last code block"].callback()
        assert copied[-1] == "pytest -q"


async def test_find_scrolls_to_and_highlights_matches(work: Path) -> None:
    app, _ = make_app(workdir=work, history_file=None)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.status.info.connected)
        for index in range(40):
            word = "needle" if index in (3, 20) else "hay"
            await screen.notice(f"line {index}: {word}")
        await pilot.pause(0.1)
        conversation = screen.conversation
        assert conversation.scroll_y > 0
        await send(pilot, "/find NEEDLE")
        await pilot.pause(0.1)
        bar = screen.query_one(FindBar)
        assert bar.has_class("-visible") and str(bar.query_one("#find-count", Static).content) == "2/2"
        match = conversation.query(".-find-match").only_one()
        assert "line 20: needle" in str(match.content)
        assert conversation.scrollable_content_region.contains_region(match.region) or match.region.y >= 0
        await pilot.press("enter")
        await pilot.pause(0.1)
        match = conversation.query(".-find-match").only_one()
        assert "line 3: needle" in str(match.content)
        assert conversation.scroll_y < 10, "scrolled up to the older match"
        assert match.region.y >= conversation.region.y and match.region.bottom <= conversation.region.bottom
        await pilot.press("escape")
        assert not conversation.query(".-find-match") and screen.focused is screen.prompt
        await pilot.press("ctrl+f")
        assert screen.focused is bar.input


# --- notifications and focus ----------------------------------------------------------------------------------------


async def test_terminal_notifications_for_approvals_and_long_turns(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main_module, "LONG_TURN_S", 0.0)
    steps: list[Step] = [("Running it.", [("bash", {"command": "echo hi"})]), ("All done here.", [])]
    app, _ = make_app(steps, workdir=work, history_file=None)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "run echo")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.terminal_notifications == [("ml-intern needs your approval", "bash echo hi")]
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.terminal_notifications) == 2 and not screen.working)
        assert app.terminal_notifications[-1] == ("ml-intern finished", "All done here.")


async def test_terminal_notifications_can_be_turned_off(work: Path) -> None:
    settings = make_settings()
    object.__setattr__(settings, "terminal_notifications", False)
    steps: list[Step] = [("Running it.", [("bash", {"command": "echo hi"})]), ("ok", [])]
    app, _ = make_app(steps, workdir=work, settings=settings, history_file=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await send(pilot, "run echo")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.terminal_notifications == []


async def test_f6_cycles_into_the_runs_pane(work: Path) -> None:
    app, _ = make_app(workdir=work, history_file=None)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.status.info.connected)
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        seen = []
        for _ in range(4):
            await pilot.press("f6")
            seen.append(screen.focused.id if screen.focused else None)
        assert seen == ["conversation", "tool-table", "runs-table", "prompt"]
