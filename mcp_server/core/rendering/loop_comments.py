"""The Markdown of the operator loop's comments on a miss, and on the last one. Pure.

When a model misses its thresholds with attempts left, ``retry_comment`` explains why, shows
the judge's suggestions and a ready-to-paste ``/retrain`` reply, and says who may answer and
until when. ``attempts_exhausted_comment`` closes a run whose every attempt missed. Every
comment starts with a hidden ``<!-- issue-mlops:KIND -->`` marker. Re-exported by
``core.rendering.comments``; the replies to commands are in ``reply_comments``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from mcp_server.core.judge.verdict import Suggestion, ThresholdCheck, Verdict, suggested_patch
from mcp_server.core.models import EvaluationReport, HistoryRecord
from mcp_server.core.rendering.history_markdown import main_metric, record_metrics
from mcp_server.core.rendering.markdown_text import (
    cell,
    fence,
    marker,
    number,
    operator_summary,
    yaml_scalar,
)
from mcp_server.core.spec.catalog import metric_direction

#: The ``author_association`` values that may start and steer runs by default.
ALLOWED_ASSOCIATIONS: tuple[str, ...] = ("OWNER", "MEMBER", "COLLABORATOR")

_COMMANDS = (
    "- `/retrain` followed by a YAML patch of the spec (a JSON merge patch, RFC 7386: only the "
    "keys that change; `null` deletes a key): trains the next attempt with the patched spec",
    "- `/approve`: accept this model as it is and register it",
    "- `/cancel`: stop the run; nothing is registered",
    "- `/status`: where the run is",
)


def retry_comment(
    record: HistoryRecord,
    verdict: Verdict,
    timeout_at: str,
    allowed: Iterable[str] = ALLOWED_ASSOCIATIONS,
) -> str:
    """Render the comment that explains a miss and asks an operator what to do.

    Args:
        record: the attempt's history record (spec, evaluation).
        verdict: the judge's verdict on it (checks, reasons, suggestions, attempts left).
        timeout_at: until when the run waits, ISO-8601 UTC.
        allowed: the ``author_association`` values whose replies count.

    Returns:
        Markdown: attempt and attempts left, metrics (train / validation / test) against the
        thresholds, the reasons, each suggestion with its figure and patch, a ready-to-paste
        ``/retrain`` reply, how to reply, who may, and until when the run waits.
    """
    left = verdict.attempts_left
    lines = [
        marker(f"retry:{record.record_id}"),
        f"### 🔁 Attempt {verdict.attempt} of {verdict.max_attempts} missed its thresholds: "
        f"{left} attempt{'s' if left != 1 else ''} left",
        "",
        f"Run `{record.record_id}` trained {trained_on(record.spec)}. The run now waits for a decision.",
        "",
        *metrics_table(record.evaluation, verdict.checks),
        *_fairness_line(verdict),
        "",
        "**Why**",
        *[f"- {reason}" for reason in verdict.reasons],
        *_suggestion_lines(verdict.suggestions),
        *_ready_reply(verdict, record.spec),
        "",
        "**How to reply**: start a new comment with one of",
        *(_COMMANDS if left > 0 else _COMMANDS[1:]),
        "",
        f"Only replies from {', '.join(sorted(allowed))} count; others get a note and change nothing. "
        f"The run waits until **{timeout_at}** (UTC): with no decision by then it ends and the "
        "model is not registered.",
    ]
    return "\n".join(lines)


def metrics_table(evaluation: EvaluationReport | None, checks: list[ThresholdCheck]) -> list[str]:
    """Return the lines of a table of metrics on train / validation / test against thresholds.

    Thresholded metrics come first, in threshold order; a ``—`` marks a value not measured.
    """
    test = evaluation.metrics if evaluation else {}
    train = evaluation.train_metrics if evaluation else {}
    validation = evaluation.validation_metrics if evaluation else {}
    by_metric = {c.metric: c for c in checks}
    rows = [
        "| metric | train | validation | test | threshold | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name in dict.fromkeys([*by_metric, *test]):
        check = by_metric.get(name)
        gate = f"{check.comparator} {check.threshold:g}" if check else "—"
        result = ("✅ pass" if check.passed else "❌ fail") if check else ""
        values = (number(train.get(name)), number(validation.get(name)), number(test.get(name)))
        rows.append(f"| {name} | {' | '.join(values)} | {gate} | {result} |")
    return rows


def trained_on(spec: dict[str, Any]) -> str:
    """``**xgboost** on **breast_cancer**``: the algorithm and its dataset (or environment) name."""
    data = spec.get("dataset") or spec.get("environment") or {}
    return f"**{spec.get('algorithm')}** on **{data.get('name', '?')}**"


def _fairness_line(verdict: Verdict) -> list[str]:
    fairness = verdict.fairness
    if not fairness:
        return []
    result = "✅ pass" if fairness.get("passed") else "❌ fail"
    return [
        "",
        f"Fairness: {fairness.get('metric')} across the groups of "
        f"'{fairness.get('sensitive_feature', '?')}' differs by {number(fairness.get('difference'))} "
        f"(limit ≤ {fairness.get('max_difference')}): {result}",
    ]


def _suggestion_lines(suggestions: list[Suggestion]) -> list[str]:
    if not suggestions:
        return []
    lines = ["", "**Suggestions**"]
    for index, suggestion in enumerate(suggestions, start=1):
        lines += [f"{index}. {suggestion.message}", f"   - Figure: {suggestion.figure}"]
        if suggestion.patch:
            changes = ", ".join(f"`{k}: {yaml_scalar(v)}`" for k, v in suggestion.patch.items())
            lines.append(f"   - Patch (hyperparameters): {changes}")
        for section, values in suggestion.section_patch.items():
            changes = ", ".join(f"`{k}: {yaml_scalar(v)}`" for k, v in values.items())
            lines.append(f"   - Patch ({section}): {changes}")
    return lines


def retrain_patch(verdict: Verdict, spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The spec patch to send with ``/retrain`` after ``verdict``.

    Args:
        verdict: the judge's verdict on the attempt.
        spec: the attempt's spec (a ``TrainingSpec`` dumped as JSON).

    Returns:
        (the patch, True) when the judge's suggestions derive one (``suggested_patch``), else
        (the spec's current hyperparameters to edit, False).
    """
    patch = suggested_patch(verdict.suggestions)
    if patch:
        return patch, True
    return {"hyperparameters": dict(spec.get("hyperparameters") or {})}, False


def _ready_reply(verdict: Verdict, spec: dict[str, Any]) -> list[str]:
    if verdict.attempts_left <= 0:
        return []
    patch, derived = retrain_patch(verdict, spec)
    intro = "**Ready to paste**: reply with this to retrain with every suggested change"
    if not derived:
        intro = "**To retrain**: no change could be derived automatically; edit these values and reply"
    text = yaml.safe_dump(patch, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    body = f"/retrain\n```yaml\n{text}\n```"
    outer = fence(body)
    return ["", f"{intro}:", "", outer, body, outer]


def attempts_exhausted_comment(records: list[HistoryRecord]) -> str:
    """Render the final failure: every attempt with its main metric, verdict and decision.

    Args:
        records: one record per attempt (any order; shown by attempt number).
    """
    ordered = sorted(records, key=lambda r: r.attempt)
    lines = [
        marker(f"attempts-exhausted:{ordered[-1].record_id if ordered else 'none'}"),
        f"### ❌ All {len(ordered)} attempts missed their thresholds: no model was registered",
        "",
        "| attempt | record | main metric | test value | threshold | verdict | operator |",
        "| --- | --- | --- | ---: | --- | --- | --- |",
    ]
    lines += [_attempt_row(record) for record in ordered]
    if ordered and ordered[-1].verdict:
        lines += ["", "**Last attempt**", *[f"- {r}" for r in ordered[-1].verdict.get("reasons", [])]]
    lines += ["", "To try again, edit the spec and remove and re-add the `mlops:train` label."]
    return "\n".join(lines)


def _attempt_row(record: HistoryRecord) -> str:
    metric = main_metric(record)
    value = record_metrics(record).get(metric) if metric else None
    threshold = record.thresholds.get(metric) if metric else None
    gate = "—"
    if metric and threshold is not None:
        gate = f"{'≥' if metric_direction(metric) == 'maximize' else '≤'} {threshold:g}"
    verdict = (record.verdict or {}).get("verdict") or record.status
    cells = [
        f"attempt {record.attempt}",
        f"`{cell(record.record_id)}`",
        metric or "—",
        number(value),
        gate,
        str(verdict),
        cell(operator_summary(record.operator)),
    ]
    return "| " + " | ".join(cells) + " |"
