"""Pure helpers for file tools: forgiving string replacement, Python checks, and diff previews."""

from __future__ import annotations

import ast
import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EditMode = Literal["replace", "append_after", "prepend_before"]
EDIT_MODES: tuple[str, ...] = ("replace", "append_after", "prepend_before")

MAX_DIFF_LINES = 400
MAX_DIFF_CHARS = 20_000

_UNICODE_LOOKALIKES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
        "\ufeff": "",
        "\u2026": "...",
    }
)

_TRAINING_CONFIGS = re.compile(r"\b(TrainingArguments|SFTConfig|DPOConfig|GRPOConfig)\s*\(")


class EditError(Exception):
    """The edit cannot be applied; the message tells the model what to change."""


@dataclass
class EditOutcome:
    """The file content after an edit and where it changed."""

    content: str
    replacements: int
    match_kind: str  # "exact", "ignoring trailing whitespace", "ignoring indentation", "normalising unicode"
    changed_lines: list[tuple[int, int]]  # 1-based inclusive line ranges of inserted text, in the new content


def normalize_unicode(text: str) -> str:
    """Map smart quotes, dashes, odd spaces and ellipses to their ASCII look-alikes."""
    return unicodedata.normalize("NFKC", text.translate(_UNICODE_LOOKALIKES)).translate(_UNICODE_LOOKALIKES)


_FUZZY_PASSES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("ignoring trailing whitespace", str.rstrip),
    ("ignoring indentation", str.strip),
    ("normalising unicode", lambda line: normalize_unicode(line).strip()),
)


def _exact_spans(content: str, old: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = content.find(old)
    while start != -1:
        spans.append((start, start + len(old)))
        start = content.find(old, start + len(old))
    return spans


def _line_starts(lines: list[str]) -> list[int]:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line)
    return starts


def _fuzzy_spans(content: str, old: str, normalise: Callable[[str], str]) -> list[tuple[int, int]]:
    """Find whole-line windows whose normalised lines equal old_str's; spans exclude the last newline."""
    old_lines = old.split("\n")
    if old_lines and old_lines[-1] == "" and len(old_lines) > 1:
        old_lines.pop()
    wanted = [normalise(line) for line in old_lines]
    if not any(wanted):
        return []
    lines = content.splitlines(keepends=True)
    starts = _line_starts(lines)
    normalised = [normalise(line.rstrip("\n")) for line in lines]
    spans: list[tuple[int, int]] = []
    n = len(wanted)
    i = 0
    while i + n <= len(lines):
        if normalised[i : i + n] == wanted:
            end_line = lines[i + n - 1]
            end = starts[i + n - 1] + len(end_line.rstrip("\n"))
            spans.append((starts[i], end))
            i += n
        else:
            i += 1
    return spans


def _reindent(new: str, old_first: str, file_first: str) -> str:
    """Shift new_str's indentation by the difference between old_str's first line and the file's."""
    old_indent = old_first[: len(old_first) - len(old_first.lstrip())]
    file_indent = file_first[: len(file_first) - len(file_first.lstrip())]
    if old_indent == file_indent:
        return new
    out = []
    for line in new.split("\n"):
        if not line.strip():
            out.append(line)
        elif file_indent.startswith(old_indent):
            out.append(file_indent[len(old_indent) :] + line)
        elif old_indent.startswith(file_indent) and line.startswith(old_indent[len(file_indent) :]):
            out.append(line[len(old_indent) - len(file_indent) :])
        else:
            out.append(line)
    return "\n".join(out)


def _closest_hint(content: str, old: str) -> str:
    """Show the file lines most like old_str's first meaningful line."""
    probe = next((line.strip() for line in old.split("\n") if line.strip()), "")
    lines = content.split("\n")
    if not probe or not lines:
        return ""
    best_ratio, best_index = 0.0, -1
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    for index, line in enumerate(lines[:50_000]):
        candidate = line.strip()
        if not candidate:
            continue
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_ratio, best_index = ratio, index
    if best_index < 0 or best_ratio < 0.5:
        return ""
    span = max(1, min(len(old.split("\n")), 8))
    start = max(0, best_index - 1)
    window = lines[start : start + span + 2]
    numbered = "\n".join(f"{start + k + 1:>6}\t{line[:200]}" for k, line in enumerate(window))
    return f"\nThe closest lines in the file (similarity {best_ratio:.0%}):\n{numbered}"


def _insertion(mode: str, matched: str, new: str, before: str, after: str) -> str:
    """Return the text that replaces a match, keeping whole-line insertions on their own lines."""
    if mode == "replace":
        return new
    if mode == "append_after":
        if matched.endswith("\n"):
            return matched + (new if new.endswith("\n") else new + "\n")
        if (after.startswith("\n") or not after) and not new.startswith("\n"):
            return matched + "\n" + new
        return matched + new
    # prepend_before
    if (before.endswith("\n") or not before) and not new.endswith("\n"):
        return new + "\n" + matched
    return new + matched


def apply_edit(
    content: str,
    old_str: str,
    new_str: str,
    *,
    replace_all: bool = False,
    mode: str = "replace",
) -> EditOutcome:
    """Replace old_str (exactly, else forgiving whitespace and unicode look-alikes) and return the new content."""
    if mode not in EDIT_MODES:
        raise EditError(f"mode must be one of {', '.join(EDIT_MODES)}, got {mode!r}.")
    if old_str == "":
        raise EditError(
            "old_str is empty. Quote the exact text to change; use write to create or replace a file."
        )
    if old_str == new_str and mode == "replace":
        raise EditError("old_str and new_str are identical, so nothing would change.")

    kind = "exact"
    spans = _exact_spans(content, old_str)
    new_text = new_str
    if not spans:
        for kind, normalise in _FUZZY_PASSES:
            spans = _fuzzy_spans(content, old_str, normalise)
            if spans:
                break
        if not spans:
            raise EditError(
                "old_str was not found in the file (also tried ignoring whitespace and unicode look-alikes). "
                "Read the file again and copy the text exactly." + _closest_hint(content, old_str)
            )
        if old_str.endswith("\n") and new_text.endswith("\n"):
            new_text = new_text[:-1]  # fuzzy spans stop before the last newline, which stays in the file
    if len(spans) > 1 and not replace_all:
        lines = [content.count("\n", 0, start) + 1 for start, _ in spans]
        shown = ", ".join(str(n) for n in lines[:10]) + (", ..." if len(lines) > 10 else "")
        raise EditError(
            f"old_str matches {len(spans)} places (lines {shown}). Add surrounding lines to make it unique, "
            "or set replace_all=true to change every match."
        )

    pieces: list[str] = []
    changed: list[tuple[int, int]] = []
    cursor = 0
    new_line_count = 0  # newlines emitted so far in the new content
    for start, end in spans:
        matched = content[start:end]
        insert = new_text
        if kind in ("ignoring indentation", "normalising unicode"):
            first_old = next((line for line in old_str.split("\n") if line.strip()), "")
            first_file = next((line for line in matched.split("\n") if line.strip()), "")
            insert = _reindent(insert, first_old, first_file)
        replacement = _insertion(mode, matched, insert, content[:start], content[end:])
        prefix = content[cursor:start]
        pieces.append(prefix)
        new_line_count += prefix.count("\n")
        first_line = new_line_count + 1
        pieces.append(replacement)
        new_line_count += replacement.count("\n")
        changed.append((first_line, max(first_line, new_line_count + 1 - (replacement.endswith("\n")))))
        cursor = end
    pieces.append(content[cursor:])
    return EditOutcome("".join(pieces), len(spans), kind, changed)


def python_warnings(path: str, content: str) -> list[str]:
    """Check Python source: syntax errors, and training configs that would never reach the Hub."""
    if not path.endswith(".py"):
        return []
    warnings: list[str] = []
    try:
        ast.parse(content, filename=path)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        warnings.append(
            f"Python syntax error at {where}: {exc.msg}. The file was saved; fix it before running."
        )
    match = _TRAINING_CONFIGS.search(content)
    if match and "push_to_hub" not in content and "hub_model_id" not in content:
        warnings.append(
            f"{match.group(1)} is used without push_to_hub/hub_model_id: the trained model will only exist "
            "where this runs (lost when a Hugging Face job ends). Set push_to_hub=True and hub_model_id."
        )
    return warnings


def unified_diff(old: str, new: str, path: str, *, max_lines: int = MAX_DIFF_LINES) -> str:
    """Return a unified diff of old -> new, capped in lines and characters."""
    diff = list(
        difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            fromfile=f"a/{path}" if old else "/dev/null",
            tofile=f"b/{path}",
            lineterm="",
            n=3,
        )
    )
    if not diff:
        return "(no changes)"
    shown, size = [], 0
    for line in diff[:max_lines]:
        if len(line) > 500:
            line = line[:500] + "..."
        if size + len(line) > MAX_DIFF_CHARS:
            break
        shown.append(line)
        size += len(line) + 1
    if len(shown) < len(diff):
        shown.append(f"... ({len(diff) - len(shown)} more diff lines)")
    return "\n".join(shown)


def numbered_snippet(content: str, first: int, last: int, context: int = 3, max_lines: int = 30) -> str:
    """Return lines first-context .. last+context of content, `cat -n` style, at most max_lines."""
    lines = content.split("\n")
    start = max(1, first - context)
    end = min(len(lines), last + context, start + max_lines - 1)
    return "\n".join(f"{n:>6}\t{lines[n - 1][:300]}" for n in range(start, end + 1))
