"""The Markdown of the comments the pipeline posts on issues. Pure.

Every comment says what happened, shows the figures behind it, and says what the reader can do
next. A hidden ``<!-- issue-mlops:KIND -->`` marker lets tools find the pipeline's comments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mcp_server.core.judge import ThresholdCheck
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.core.spec import MISSING, SpecError

RETRY_HINT = (
    "To try again, edit the spec in the issue body and remove and re-add the "
    "`mlops:train` label: each labelling starts a new run."
)


def _marker(kind: str) -> str:
    return f"<!-- issue-mlops:{kind} -->"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def spec_errors_comment(errors: Iterable[SpecError]) -> str:
    """Render the one comment listing every spec error.

    Args:
        errors: the errors from validation, each with path, value and message.

    Returns:
        Markdown: a table of field path, value received, problem and what is allowed.
    """
    errors = list(errors)
    lines = [
        _marker("spec-errors"),
        f"### ❌ The training spec has {len(errors)} error{'s' if len(errors) != 1 else ''}; "
        "nothing was started",
        "",
        "| field | value received | problem and what is allowed |",
        "| --- | --- | --- |",
    ]
    for error in errors:
        missing = error.value is MISSING or error.value is None
        shown = "—" if missing else f"`{_cell(repr(error.value))[:120]}`"
        lines.append(f"| `{_cell(error.path)}` | {shown} | {_cell(error.message)} |")
    lines += [
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
            _marker("unauthorised"),
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
    if re.fullmatch(r"[\w.-]+/[\w.-]+", commit.repository):
        url = f"https://github.com/{commit.repository}/blob/{commit.commit_sha}/{commit.path}"
        return f"[{commit.path}]({url}) at commit `{commit.commit_sha[:10]}`"
    return f"`{commit.repository}/{commit.path}` at commit `{commit.commit_sha[:10]}`"


def run_comment(record: HistoryRecord, commit: HistoryCommit | None) -> str:
    """Render the comment that closes a run: succeeded, rejected by the judge, or failed.

    Args:
        record: the run's history record.
        commit: where the record was committed (None when recording itself failed).

    Returns:
        Markdown with the outcome, metrics against thresholds, the verdict's reasons, the model
        version or the error, and the record's link.
    """
    spec = record.spec
    what = f"**{spec.get('algorithm')}** on **{(spec.get('dataset') or {}).get('name', '?')}**"
    lines = [_marker(f"run:{record.record_id}")]
    if record.status == "succeeded" and record.model:
        model = record.model
        lines.append(
            f"### ✅ Model registered: `{model.name}` version {model.version} "
            f"(semantic version {model.semantic_version})"
        )
    elif record.status == "rejected":
        lines.append("### ❌ Model rejected: it did not reach its thresholds")
    else:
        lines.append("### ⚠️ Run failed")
    lines += [
        "",
        f"Run `{record.record_id}` (attempt {record.attempt}) trained {what}"
        + (f", data version `{record.dataset.data_version}`." if record.dataset else "."),
    ]
    if record.evaluation:
        checks = [ThresholdCheck.model_validate(c) for c in (record.verdict or {}).get("checks", [])]
        lines += ["", *_threshold_rows(record, checks)]
    if record.verdict:
        lines += ["", f"**Verdict: {record.verdict.get('verdict')}**"]
        lines += [f"- {reason}" for reason in record.verdict.get("reasons", [])]
    if record.error:
        lines += [
            "",
            f"**{record.error.get('Error', 'Error')}**",
            "",
            "```text",
            (record.error.get("Cause") or "no cause was reported")[:3000],
            "```",
        ]
        if record.training and record.training.log_uri:
            lines.append(f"Training log: `{record.training.log_uri}`")
    lines.append("")
    if record.model:
        lines.append(
            f"- Model: `{record.model.model_uri}`, aliases "
            f"{', '.join(f'`{a}`' for a in record.model.aliases) or 'none'}"
        )
    if record.training:
        duration = f" ({record.training.duration_s:.1f} s)" if record.training.duration_s else ""
        lines.append(f"- Training job: `{record.training.job_name}`{duration}")
    lines.append(f"- History record: {record_link(commit)}")
    if record.status != "succeeded":
        lines += ["", RETRY_HINT]
    lines += ["", f"<sub>spec hash `{record.spec_hash}`</sub>"]
    return "\n".join(lines)
