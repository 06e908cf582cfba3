"""Markdown text primitives shared by the issue comments and the history records. Pure.

Kept apart so that ``comments``, ``loop_comments`` and ``reply_comments`` share them without
importing each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from mcp_server.core.spec.errors import MISSING, SpecError


def marker(kind: str) -> str:
    """Return the hidden marker ``<!-- issue-mlops:{kind} -->`` that identifies a comment."""
    return f"<!-- issue-mlops:{kind} -->"


def cell(value: object) -> str:
    """Make ``value`` safe inside a Markdown table cell (one line, escaped pipes)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def fence(text: str) -> str:
    """Return a backtick fence longer than any backtick run inside ``text`` (at least three)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def number(value: float | None) -> str:
    """Format a metric value for a table: four decimals, ``—`` when absent or NaN."""
    if value is None or value != value:
        return "—"
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def human_duration(seconds: float) -> str:
    """Render a duration for people: ``42 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


#: Rows of an errors table; the rest are counted in one last line.
MAX_ERROR_ROWS = 50
#: GitHub refuses a comment (or an issue body) longer than this many characters.
MAX_COMMENT_CHARS = 65_536


def errors_table(errors: Iterable[SpecError]) -> list[str]:
    """Return the lines of a table of spec errors: field, value received, problem.

    At most ``MAX_ERROR_ROWS`` rows; each value is quoted in at most about 200 characters.
    """
    errors = list(errors)
    lines = ["| field | value received | problem and what is allowed |", "| --- | --- | --- |"]
    for error in errors[:MAX_ERROR_ROWS]:
        missing = error.value is MISSING or error.value is None
        shown = "—" if missing else f"`{cell(error.shown_value).replace('`', chr(39))}`"
        lines.append(f"| `{cell(error.path).replace('`', chr(39))}` | {shown} | {cell(error.message)} |")
    if len(errors) > MAX_ERROR_ROWS:
        lines.append(f"| … | | and {len(errors) - MAX_ERROR_ROWS} more errors, not shown |")
    return lines


def fit_comment(body: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """Return ``body`` cut to GitHub's comment limit, saying so at the end when it was cut.

    The cut falls on a line boundary where possible, and an open code fence is closed.

    Args:
        body: Markdown.
        limit: characters at most (default 65,536, GitHub's limit).

    Returns:
        ``body`` unchanged when it fits, else its head and a note of how much was left out.
    """
    if len(body) <= limit:
        return body
    note = f"\n\n… {{}} characters were left out: GitHub allows {limit:,} per comment."
    head = body[: limit - len(note) - 40]
    cut = head.rfind("\n")
    head = head[:cut] if cut > len(head) // 2 else head
    if head.count("```") % 2:
        head += "\n```"
    return head + note.format(f"{len(body) - len(head):,}")


def yaml_scalar(value: Any) -> str:
    """Render a value as inline YAML: ``4``, ``0.8``, ``balanced``, ``null``, ``{a: 1}``."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def operator_summary(operator: dict[str, Any] | None) -> str:
    """One line for an operator decision, e.g. ``retrain by @alice: hyperparameters.max_depth: 4``.

    Args:
        operator: ``HistoryRecord.operator`` (action, by, at, patch, diff), or ``None``.
    """
    if not operator:
        return "—"
    by = f" by @{operator['by']}" if operator.get("by") else ""
    changes = ", ".join(f"{path}: {yaml_scalar(v)}" for path, v in _flatten(operator.get("patch") or {}))
    return f"{operator.get('action', '?')}{by}" + (f": {changes[:200]}" if changes else "")


def _flatten(patch: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in patch.items():
        path = f"{prefix}{key}"
        out += _flatten(value, f"{path}.") if isinstance(value, dict) and value else [(path, value)]
    return out
