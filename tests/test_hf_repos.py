"""hf_repo_files and hf_repo_git against the loopback fake Hub."""

from __future__ import annotations

import pytest

from ml_intern.core.tools import Risk
from ml_intern.tools import hf_repos
from tests.harness.fake_hub import FakeHub, ToolHarness, hub_environment

REPO = "tester/tiny-model"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        yield fake


@pytest.fixture
def harness(tmp_path):
    return ToolHarness(workdir=tmp_path)


async def files(harness, **args):
    return await hf_repos.handle_files(args, harness.ctx("hf_repo_files"))


async def git(harness, **args):
    return await hf_repos.handle_git(args, harness.ctx("hf_repo_git"))


def test_risks():
    assert hf_repos.files_risk({"operation": "list"}) is Risk.READ
    assert hf_repos.files_risk({"operation": "read"}) is Risk.READ
    assert hf_repos.files_risk({"operation": "upload"}) is Risk.DESTRUCTIVE
    assert hf_repos.files_risk({"operation": "delete"}) is Risk.DESTRUCTIVE
    for op in ("list_refs", "list_prs", "get_pr"):
        assert hf_repos.git_risk({"operation": op}) is Risk.READ
    for op in ("create_branch", "create_tag"):
        assert hf_repos.git_risk({"operation": op}) >= Risk.EDIT
    for op in (
        "delete_branch",
        "delete_tag",
        "merge_pr",
        "close_pr",
        "create_repo",
        "update_repo",
        "create_pr",
        "comment_pr",
        "change_pr_status",
    ):
        assert hf_repos.git_risk({"operation": op}) is Risk.DESTRUCTIVE


async def test_list_and_read(hub, harness):
    listing = await files(harness, operation="list", repo_id=REPO)
    assert "config.json" in listing.output and "4 files" in listing.output
    text = await files(harness, operation="read", repo_id=REPO, path="config.json")
    assert '"hidden_size": 64' in text.output
    binary = await files(harness, operation="read", repo_id=REPO, path="model.safetensors")
    assert "binary file" in binary.output and "2,048 bytes" in binary.output
    big = await files(harness, operation="read", repo_id=REPO, path="big.txt")
    assert "truncated" in big.output and len(big.output) < 50_200


async def test_read_errors_are_clear(hub, harness, monkeypatch):
    missing_file = await files(harness, operation="read", repo_id=REPO, path="nope.txt")
    assert not missing_file.success and "file not found" in missing_file.output
    missing_repo = await files(harness, operation="list", repo_id="tester/nothing")
    assert not missing_repo.success and "404" in missing_repo.output
    monkeypatch.delenv("HF_TOKEN")
    gated = await files(
        harness, operation="read", repo_id="acme/gated-chat", repo_type="dataset", path="README.md"
    )
    assert not gated.success and "gated" in gated.output


async def test_upload_and_delete_with_preview(hub, harness):
    args = {
        "operation": "upload",
        "repo_id": REPO,
        "path": "notes/readme.md",
        "content": "line one\nline two\n",
    }
    info = hf_repos.describe_files(args, harness.ctx("hf_repo_files"))
    assert (
        "notes/readme.md" in info.preview
        and "18 bytes, 2 lines" in info.preview
        and "line one" in info.preview
    )
    result = await files(harness, **args)
    assert result.success, result.output
    assert hub.repos[("model", REPO)].files["notes/readme.md"] == b"line one\nline two\n"
    assert harness.state.side_effects

    delete_args = {"operation": "delete", "repo_id": REPO, "patterns": ["notes/*"]}
    assert "notes/*" in hf_repos.describe_files(delete_args, harness.ctx("hf_repo_files")).preview
    deleted = await files(harness, **delete_args)
    assert deleted.success, deleted.output
    assert "notes/readme.md" not in hub.repos[("model", REPO)].files


async def test_upload_as_pr(hub, harness):
    result = await files(harness, operation="upload", repo_id=REPO, path="a.txt", content="x", create_pr=True)
    assert "Pull request:" in result.output
    assert hub.repos[("model", REPO)].discussions[0]["isPullRequest"]


async def test_upload_without_token_is_explained(hub, harness, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    result = await files(harness, operation="upload", repo_id=REPO, path="a.txt", content="x")
    assert not result.success and "401" in result.output


async def test_branches_tags_and_refs(hub, harness):
    assert (await git(harness, operation="create_branch", repo_id=REPO, branch="dev")).success
    assert (await git(harness, operation="create_tag", repo_id=REPO, tag="v1", tag_message="first")).success
    refs = await git(harness, operation="list_refs", repo_id=REPO)
    assert "dev" in refs.output and "v1" in refs.output
    dup = await git(harness, operation="create_branch", repo_id=REPO, branch="dev")
    assert not dup.success and "409" in dup.output
    assert (await git(harness, operation="delete_tag", repo_id=REPO, tag="v1")).success
    assert (await git(harness, operation="delete_branch", repo_id=REPO, branch="dev")).success
    assert "dev" not in hub.repos[("model", REPO)].branches


async def test_pull_request_lifecycle(hub, harness):
    created = await git(
        harness, operation="create_pr", repo_id=REPO, title="Add eval", description="Adds eval"
    )
    assert "#1" in created.output
    listed = await git(harness, operation="list_prs", repo_id=REPO)
    assert "#1 [open] Add eval" in listed.output
    await git(harness, operation="comment_pr", repo_id=REPO, pr_num=1, comment="LGTM")
    details = await git(harness, operation="get_pr", repo_id=REPO, pr_num=1)
    assert "LGTM" in details.output and "(PR)" in details.output
    closed = await git(harness, operation="close_pr", repo_id=REPO, pr_num=1)
    assert closed.success and hub.repos[("model", REPO)].discussions[0]["status"] == "closed"
    await git(harness, operation="change_pr_status", repo_id=REPO, pr_num=1, new_status="open")
    merged = await git(harness, operation="merge_pr", repo_id=REPO, pr_num=1)
    assert merged.success and hub.repos[("model", REPO)].discussions[0]["status"] == "merged"
    missing = await git(harness, operation="get_pr", repo_id=REPO, pr_num=99)
    assert not missing.success and "404" in missing.output


async def test_create_repo_is_private_by_default_and_update(hub, harness):
    created = await git(harness, operation="create_repo", repo_id="tester/new-model")
    assert created.success and "private" in created.output
    assert hub.repos[("model", "tester/new-model")].private is True
    info = hf_repos.describe_git(
        {"operation": "create_repo", "repo_id": "tester/x", "private": False}, harness.ctx("hf_repo_git")
    )
    assert any("PUBLIC" in w for w in info.warnings)
    updated = await git(harness, operation="update_repo", repo_id="tester/new-model", gated="manual")
    assert updated.success and hub.repos[("model", "tester/new-model")].gated == "manual"
    from ml_intern.core.tools import ToolError

    with pytest.raises(ToolError, match="space_sdk"):
        await git(harness, operation="create_repo", repo_id="tester/demo", repo_type="space")
