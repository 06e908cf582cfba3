"""The Markdown of the comments the pipeline posts on issues. Pure.

Every comment says what happened, shows the figures behind it, and says what the reader can do
next. A hidden ``<!-- issue-mlops:KIND -->`` marker lets tools find the pipeline's comments.

This module holds the comments that start and close runs. The operator loop's comments live in
``loop_comments`` (a miss explained, every attempt exhausted) and ``reply_comments`` (replies to
commands, the status comment, the end of a wait); they are re-exported here, so callers import
every comment from this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mcp_server.core.judge.verdict import ThresholdCheck
from mcp_server.core.models import HistoryCommit, HistoryRecord, TuningJob
from mcp_server.core.rendering.deployment_text import deployment_lines, retraining_lines
from mcp_server.core.rendering.loop_comments import (
    ALLOWED_ASSOCIATIONS,
    attempts_exhausted_comment,
    retry_comment,
    trained_on,
)
from mcp_server.core.rendering.markdown_text import errors_table, fence, marker, number, yaml_scalar
from mcp_server.core.rendering.reply_comments import (
    approved_comment,
    cancelled_comment,
    not_waiting_comment,
    patch_errors_comment,
    retrain_accepted_comment,
    status_comment,
    status_reply,
    timeout_comment,
    unauthorised_command_comment,
)
from mcp_server.core.spec.bounds import shorten
from mcp_server.core.spec.schema import SpecError
from mcp_server.core.workflow.state import CaughtError

__all__ = [
    "ALLOWED_ASSOCIATIONS",
    "RETRY_HINT",
    "approved_comment",
    "attempts_exhausted_comment",
    "cancelled_comment",
    "execution_ended_comment",
    "not_waiting_comment",
    "operator_of",
    "patch_errors_comment",
    "record_link",
    "retrain_accepted_comment",
    "retry_comment",
    "run_comment",
    "spec_errors_comment",
    "status_comment",
    "status_reply",
    "timeout_comment",
    "unauthorised_command_comment",
    "unauthorised_comment",
]

RETRY_HINT = (
    "To try again, edit the spec in the issue body and remove and re-add the "
    "`mlops:train` label: each labelling starts a new run."
)


def spec_errors_comment(errors: Iterable[SpecError]) -> str:
    """Render the one comment listing every spec error.

    Args:
        errors: the errors from validation, each with path, value and message.

    Returns:
        Markdown: a table of field path, value received, problem and what is allowed.
    """
    errors = list(errors)
    lines = [
        marker("spec-errors"),
        f"### ❌ The training spec has {len(errors)} error{'s' if len(errors) != 1 else ''}; "
        "nothing was started",
        "",
        *errors_table(errors),
        "",
        "Fix the spec in the issue body, then remove and re-add the `mlops:train` label "
        "to run it. The spec reference is in the repository README.",
    ]
    return "\n".join(lines)


def unauthorised_comment(login: str, association: str, allowed: Iterable[str]) -> str:
    """Render the reply to someone who may not start or steer runs.

    Args:
        login: the GitHub user.
        association: their ``author_association`` (e.g. CONTRIBUTOR, NONE).
        allowed: the associations that may.

    Returns:
        Markdown explaining that nothing was started and who can start it.
    """
    return "\n".join(
        [
            marker("unauthorised"),
            f"### 🔒 @{login}, this request was not run",
            "",
            f"Training runs can be started only by repository members whose association is one of "
            f"{', '.join(sorted(allowed))}; yours is `{association}`. Nothing was started. "
            "A maintainer can re-apply the `mlops:train` label to run this spec.",
        ]
    )


def _threshold_rows(record: HistoryRecord, checks: list[ThresholdCheck]) -> list[str]:
    metrics = record.evaluation.metrics if record.evaluation else {}
    by_metric = {c.metric: c for c in checks}
    rows = ["| metric | test value | threshold | result |", "| --- | --- | --- | --- |"]
    names = list(dict.fromkeys([*metrics, *by_metric]))
    for name in names:
        value = metrics.get(name)
        shown = f"{value:.4f}" if isinstance(value, float) else "—"
        check = by_metric.get(name)
        if check is None:
            rows.append(f"| {name} | {shown} | — | |")
        else:
            rows.append(
                f"| {name} | {shown} | {check.comparator} {check.threshold:g} | "
                f"{'✅ pass' if check.passed else '❌ fail'} |"
            )
    return rows


def record_link(commit: HistoryCommit | None) -> str:
    """Return a Markdown link to the committed record (GitHub blob URL, or the local path)."""
    if commit is None:
        return "not recorded"
    if commit.url:
        return f"[{commit.path}]({commit.url}) at commit `{commit.commit_sha[:10]}`"
    if re.fullmatch(r"[\w.-]+/[\w.-]+", commit.repository):
        url = f"https://github.com/{commit.repository}/blob/{commit.commit_sha}/{commit.path}"
        return f"[{commit.path}]({url}) at commit `{commit.commit_sha[:10]}`"
    return f"`{commit.repository}/{commit.path}` at commit `{commit.commit_sha[:10]}`"


def run_comment(record: HistoryRecord, commit: HistoryCommit | None) -> str:
    """Render the comment that closes a run, or an attempt of it.

    Args:
        record: the run's history record; its status is succeeded (registered, possibly after an
            operator's ``/approve``), rejected (by the judge, or an operator's wait timed out),
            awaiting_operator, cancelled (by an operator) or failed.
        commit: where the record was committed (None when recording itself failed).

    Returns:
        Markdown with the outcome (and who decided it), metrics against thresholds, the
        verdict's reasons, the model version or the error, the record's link and what to do next.
    """
    spec = record.spec
    what = trained_on(spec)
    lines = [marker(f"run:{record.record_id}"), *_headline(record)]
    verb = (
        "trained" if record.training is not None and record.training.status == "Completed" else "was to train"
    )
    lines += [
        "",
        f"Run `{record.record_id}` (attempt {record.attempt}) {verb} {what}"
        + (f", data version `{record.dataset.data_version}`." if record.dataset else "."),
    ]
    if record.evaluation:
        checks = [ThresholdCheck.model_validate(c) for c in (record.verdict or {}).get("checks", [])]
        lines += ["", *_threshold_rows(record, checks)]
    if record.verdict:
        lines += ["", f"**Verdict: {record.verdict.get('verdict')}**"]
        lines += [f"- {reason}" for reason in record.verdict.get("reasons", [])]
    lines += _error_lines(record)
    lines.append("")
    if record.model:
        lines.append(
            f"- Model: `{record.model.model_uri}`, aliases "
            f"{', '.join(f'`{a}`' for a in record.model.aliases) or 'none'}"
        )
    if record.training:
        duration = f" ({record.training.duration_s:.1f} s)" if record.training.duration_s else ""
        lines.append(f"- Training job: `{record.training.job_name}`{duration}")
        if record.training.tuning:
            lines.append(tuning_line(record.training.tuning))
        lines += [f"- Note: {note}" for note in record.training.notes]
    lines.append(f"- History record: {record_link(commit)}")
    deployed = retraining_lines(record) + ([""] if record.trigger else []) + deployment_lines(record)
    if deployed:
        lines += ["", *deployed]
    hint = _next_step(record)
    if hint:
        lines += ["", hint]
    lines += ["", f"<sub>spec hash `{record.spec_hash}`</sub>"]
    return "\n".join(lines)


def execution_ended_comment(execution: str, error: CaughtError) -> str:
    """Render the comment on an execution that ended where its state could not be read back.

    Args:
        execution: the execution name.
        error: what ended it (``Error``, ``Cause``, ``State``).

    Returns:
        Markdown: the state, the error and its cause, and how to run the spec again.
    """
    where = f" in state `{error.State}`" if error.State else ""
    cause = shorten(error.Cause or "no cause was reported", 3000)
    return "\n".join(
        [
            marker(f"ended:{execution}"),
            f"### ⚠️ Run failed{where}",
            "",
            f"Execution `{execution}` ended with **{error.Error}**:",
            "",
            fence(cause) + "text",
            cause,
            fence(cause),
            "",
            "Its state could not be read back, so no history record was written. " + RETRY_HINT,
        ]
    )


def tuning_line(tuning: TuningJob) -> str:
    """One line on a hyperparameter tuning job: trials, failures and the best trial's values."""
    failed = sum(t.status != "Completed" for t in tuning.trials)
    head = f"- Hyperparameter tuning: {tuning.strategy} search over {len(tuning.trials)} trials"
    head += f" ({failed} failed)" if failed else ""
    best = tuning.best()
    if best is None:
        return head + ", no trial completed"
    values = ", ".join(
        f"{name}: {format(value, '.4g') if isinstance(value, float) else yaml_scalar(value)}"
        for name, value in best.hyperparameters.items()
    )
    return (
        f"{head}; best trial {best.number} with {tuning.objective_metric} "
        f"{number(best.objective)} (`{values[:200]}`)"
    )


def operator_of(record: HistoryRecord) -> tuple[str, str, str]:
    """Return the operator decision's ``(action, @login or "", " at TIME" or "")``."""
    operator = record.operator or {}
    login = f"@{operator['by']}" if operator.get("by") else ""
    when = f" at {operator['at']}" if operator.get("at") else ""
    return str(operator.get("action") or ""), login, when


def _headline(record: HistoryRecord) -> list[str]:
    action, login, when = operator_of(record)
    if record.status == "succeeded" and record.model:
        model = record.model
        head = (
            f"### ✅ Model registered: `{model.name}` version {model.version} "
            f"(semantic version {model.semantic_version})"
        )
        if action == "approve":
            return [head, "", f"Approved by {login or 'an operator'}{when} although it missed a threshold."]
        return [head]
    if record.status == "rejected":
        head = "### ❌ Model rejected: it did not reach its thresholds"
        if action == "timeout":
            return [head, "", f"The wait for an operator's decision timed out{when}."]
        return [head]
    if record.status == "cancelled":
        return [f"### 🛑 Run cancelled by {login or 'an operator'}{when}: no model was registered"]
    if record.status == "awaiting_operator":
        return [f"### ⏸️ Attempt {record.attempt} missed its thresholds: waiting for an operator"]
    state = (record.error or {}).get("State")
    return [f"### ⚠️ Run failed in state `{state}`" if state else "### ⚠️ Run failed"]


def _error_lines(record: HistoryRecord) -> list[str]:
    if not record.error:
        return []
    lines = [
        "",
        f"**{record.error.get('Error', 'Error')}**",
        "",
        "```text",
        (record.error.get("Cause") or "no cause was reported")[:3000],
        "```",
    ]
    if record.training and record.training.log_uri:
        lines.append(f"Training log: `{record.training.log_uri}`")
    return lines


def _next_step(record: HistoryRecord) -> str:
    if record.status == "succeeded":
        return ""
    if record.status == "awaiting_operator":
        return (
            "Reply `/retrain` with a YAML patch of the spec, `/approve` to register the model as it "
            "is, `/cancel` to stop, or `/status`; the comment explaining the miss has the details."
        )
    return RETRY_HINT
