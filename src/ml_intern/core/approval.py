"""Approval policy: which calls run, which ask a human, which are refused; and the approvers that answer."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal, Protocol

from ml_intern.config import ApprovalRule
from ml_intern.core.events import ApprovalItem
from ml_intern.core.operations import ApprovalAnswer
from ml_intern.core.tools import Risk

ApprovalMode = Literal["ask", "auto", "yolo"]

# The lowest risk that asks in each mode.
_ASK_FROM: dict[str, Risk] = {"ask": Risk.EDIT, "auto": Risk.EXEC, "yolo": Risk.ALWAYS_ASK}


@dataclass
class Verdict:
    """The policy's answer for one call."""

    action: Literal["run", "ask", "deny"]
    reason: str = ""


def _rule_matches(rule: ApprovalRule, tool: str, subject: str) -> bool:
    if rule.tool != "*" and not fnmatch.fnmatchcase(tool, rule.tool):
        return False
    return fnmatch.fnmatchcase(subject, rule.pattern) or subject == rule.pattern


class ApprovalPolicy:
    """Maps a call (tool, risk, subject) to run / ask / deny under a mode and a list of rules."""

    def __init__(self, mode: ApprovalMode = "ask", rules: list[ApprovalRule] | None = None) -> None:
        self.mode: ApprovalMode = mode
        self.saved_rules: list[ApprovalRule] = list(rules or [])
        self.session_rules: list[ApprovalRule] = []

    def decide(self, tool: str, risk: Risk, subject: str, *, over_budget: bool = False) -> Verdict:
        """Return what to do with one call; deny rules win, then allow rules, then the mode."""
        rules = [*self.session_rules, *self.saved_rules]
        for rule in rules:
            if rule.action == "deny" and _rule_matches(rule, tool, subject):
                return Verdict("deny", f"denied by rule {rule.tool}: {rule.pattern!r}")
        if over_budget and risk >= Risk.COST:
            return Verdict("ask", "the session spend cap is reached")
        if risk >= Risk.ALWAYS_ASK:
            return Verdict("ask", "recurring cost: always confirmed")
        for rule in rules:
            if rule.action == "allow" and _rule_matches(rule, tool, subject):
                return Verdict("run", f"allowed by rule {rule.tool}: {rule.pattern!r}")
        if risk >= _ASK_FROM[self.mode]:
            return Verdict("ask", _REASONS.get(risk, "needs confirmation"))
        return Verdict("run")

    def add_rule(self, rule: ApprovalRule, *, forever: bool = False) -> None:
        """Add a rule for this session, or to the saved list."""
        target = self.saved_rules if forever else self.session_rules
        if rule not in target:
            target.append(rule)


_REASONS = {
    Risk.EDIT: "changes files on this machine",
    Risk.EXEC: "runs a command on this machine",
    Risk.EXTERNAL: "calls a third-party MCP tool",
    Risk.COST: "costs money",
    Risk.DESTRUCTIVE: "changes or deletes remote state",
}


def suggest_rule_pattern(tool: str, subject: str) -> str:
    """Propose the glob an 'always allow' answer saves: the command's program and first word, or the exact path."""
    if tool == "bash":
        words = subject.split()
        if len(words) >= 2:
            return f"{words[0]} {words[1]}*"
        return f"{subject}*" if subject else "*"
    return subject or "*"


class Approver(Protocol):
    """Answers approval requests; the interactive front end uses events instead of an Approver."""

    async def decide(self, items: list[ApprovalItem]) -> list[ApprovalAnswer]:
        """Return one answer per item."""
        ...


class PolicyApprover:
    """Never waits for a human: answers every request at once (headless)."""

    def __init__(self, approve: bool = False, message: str | None = None) -> None:
        self.approve = approve
        self.message = message or (
            "Not run: this call needs approval and ml-intern is running headless in 'ask' mode. "
            "Re-run with --approval-mode auto or yolo, or add an allow rule."
        )

    async def decide(self, items: list[ApprovalItem]) -> list[ApprovalAnswer]:
        """Approve or deny everything, with a clear message."""
        return [
            ApprovalAnswer(
                tool_call_id=item.tool_call_id,
                approved=self.approve,
                feedback=None if self.approve else self.message,
            )
            for item in items
        ]
