"""Render run records and the run index as Markdown for ``training_history/``. Pure: no I/O.

A record is YAML front matter (the fields the index needs, machine-readable) followed by
human-readable sections. The index is rebuilt from the front matter of every record file, so
two writers that commit at the same time never drop each other's row.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import yaml

from mcp_server.core.models import HistoryRecord
from mcp_server.core.rendering.deployment_text import PACKAGE_ASSETS, deployment_section, retraining_section
from mcp_server.core.rendering.history_sections import (
    BASELINE_FILE,
    NONE,
    SHAP_PLOT,
    baseline_section,
    cell,
    failure_section,
    fairness_section,
    fence,
    inline,
    judge_section,
    num,
    operator_section,
    outputs_section,
    plot_stem,
    shap_section,
    splits_section,
    timings_section,
    tuning_section,
)
from mcp_server.core.spec.catalog import LOWER_IS_BETTER

HISTORY_DIR = "training_history"
INDEX_PATH = f"{HISTORY_DIR}/README.md"
INDEX_DATA_PATH = f"{HISTORY_DIR}/index.json"

_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+|\.{2,}")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


def safe_name(value: str, max_length: int = 80) -> str:
    """Return ``value`` as a filesystem- and URL-safe name (letters, digits, ``.``, ``_``, ``-``).

    A name that had to be changed gets the first 8 hex digits of its SHA-256 appended, so two
    different values never map to the same name.

    Args:
        value: any string, e.g. an execution name.
        max_length: maximum length of the cleaned part, before the hash suffix.

    Returns:
        The safe name; never empty, never starting with ``.`` or ``-``.
    """
    cleaned = re.sub(r"-{2,}", "-", _UNSAFE_NAME.sub("-", value)).strip(".-")[:max_length] or "record"
    if cleaned == value:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def record_date(started_at: str) -> str:
    """Return the UTC date ``YYYY-MM-DD`` of an ISO-8601 timestamp.

    Raises:
        ValueError: ``started_at`` is not an ISO-8601 date or timestamp.
    """
    try:
        moment = datetime.fromisoformat(started_at)
    except ValueError as err:
        raise ValueError(
            f"started_at {started_at!r} is not ISO-8601; expected e.g. 2025-01-31T12:00:00Z"
        ) from err
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d")


def record_stem(record: HistoryRecord) -> str:
    """Return the record's file stem: ``{date}-issue-{n}-{record_id}``, filesystem-safe.

    A record id that already starts with ``issue-{n}-`` (execution names do) is not repeated.

    Raises:
        ValueError: ``record.started_at`` is not ISO-8601.
    """
    prefix = f"issue-{record.issue.number}-"
    rest = record.record_id.removeprefix(prefix)
    return f"{record_date(record.started_at)}-{prefix}{safe_name(rest)}"


def asset_name(name: str) -> str:
    """Return ``name`` (a relative path of a file a record links) with every component made safe.

    Raises:
        ValueError: the name is empty, absolute, or climbs out with ``..``.
    """
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"file name {name!r} must be a relative path without '..', e.g. 'roc_curve.png'")
    cleaned = []
    for part in parts:
        stem, dot, suffix = part.rpartition(".")
        cleaned.append(f"{safe_name(stem)}.{safe_name(suffix)}" if dot and stem else safe_name(part))
    return "/".join(cleaned)


def is_record_path(path: str) -> bool:
    """True when ``path`` (relative to the repository root) is a record file: ``training_history/*.md``.

    The index (``README.md``) and files under ``assets/`` are not records.
    """
    folder, _, name = path.rpartition("/")
    return folder == HISTORY_DIR and name.endswith(".md") and path != INDEX_PATH


def index_row(file_name: str, markdown: str) -> dict[str, Any]:
    """Return the index row of one record file: its front matter plus ``record_path``.

    Args:
        file_name: the record's name inside ``training_history/`` (its link from the index).
        markdown: the record file's text.

    Returns:
        The front matter, with ``record_path`` = ``file_name``; a file without readable front
        matter still gets a row (``record_id`` its stem, ``status`` ``unreadable``), so the
        index lists every record file.
    """
    try:
        matter = front_matter(markdown)
    except ValueError:
        matter = {}
    stem = file_name.removesuffix(".md")
    return {"record_id": stem, "status": "unreadable", **matter, "record_path": file_name}


def render_index_data(rows: list[dict[str, Any]]) -> str:
    """Render the index rows as JSON (``training_history/index.json``), sorted by ``record_path``.

    The same rows always give the same text, so an unchanged index makes no commit. Values
    JSON has no type for (dates read back from YAML) are written as strings.
    """
    ordered = sorted(rows, key=lambda row: str(row.get("record_path")))
    return json.dumps({"records": ordered}, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def read_index_data(text: str) -> list[dict[str, Any]]:
    """Read the rows ``render_index_data`` wrote; ``[]`` for text that is not such a document."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        return []
    return [row for row in records if isinstance(row, dict) and isinstance(row.get("record_path"), str)]


def record_metrics(record: HistoryRecord) -> dict[str, float]:
    """Return the test-split metrics, or the training job's when there was no evaluation."""
    if record.evaluation is not None:
        return dict(record.evaluation.metrics)
    return dict(record.training.metrics) if record.training is not None else {}


def main_metric(record: HistoryRecord) -> str | None:
    """Return the metric the index shows: the first thresholded one measured, else the first."""
    metrics = record_metrics(record)
    for name in record.thresholds:
        if name in metrics:
            return name
    return next(iter(metrics), None)


def metric_passes(metric: str, value: float, threshold: float) -> bool:
    """Return whether ``value`` meets ``threshold`` (a ceiling for ``LOWER_IS_BETTER`` metrics)."""
    return value <= threshold if metric in LOWER_IS_BETTER else value >= threshold


def record_front_matter(record: HistoryRecord) -> dict[str, Any]:
    """Return the record's front matter as a plain mapping (what ``front_matter`` reads back)."""
    model = record.model
    return {
        "record_id": record.record_id,
        "issue": record.issue.number,
        "issue_url": record.issue.url,
        "repository": record.issue.repository,
        "status": record.status,
        "attempt": record.attempt,
        "spec_hash": record.spec_hash,
        "data_version": record.dataset.data_version if record.dataset else None,
        "dataset_id": record.dataset.dataset_id if record.dataset else None,
        "model_name": model.name if model else None,
        "model_version": model.version if model else None,
        "semantic_version": model.semantic_version if model else None,
        "verdict": (record.verdict or {}).get("verdict"),
        "operator_action": (record.operator or {}).get("action"),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "main_metric": main_metric(record),
        "metrics": record_metrics(record),
    }


def front_matter(markdown: str) -> dict[str, Any]:
    """Read the YAML front matter of a record back.

    Args:
        markdown: a record as ``render_record`` wrote it.

    Returns:
        The front matter mapping; ``{}`` when the text has no front matter.

    Raises:
        ValueError: the front matter is not a YAML mapping.
    """
    found = _FRONT_MATTER.match(markdown)
    if found is None:
        return {}
    try:
        data = yaml.safe_load(found.group(1))
    except yaml.YAMLError as err:
        raise ValueError(f"record front matter is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"record front matter must be a mapping, got {type(data).__name__}")
    return data


def render_record(record: HistoryRecord, plot_links: dict[str, str]) -> str:
    """Render one run's record as Markdown with YAML front matter.

    Args:
        record: the run's record.
        plot_links: file name -> link relative to the record file, e.g.
            ``{"roc_curve.png": "assets/2025-01-31-issue-12-exec/roc_curve.png"}``; images are
            embedded, other files linked; ``baseline.json`` is the drift baseline's copy.

    Returns:
        The Markdown text, ending with a newline.
    """
    matter = yaml.safe_dump(record_front_matter(record), sort_keys=False, allow_unicode=True)
    sections = [
        f"---\n{matter}---",
        _title(record),
        _summary(record),
        _metrics_section(record),
        splits_section(record),
        outputs_section(record),
        tuning_section(record),
        judge_section(record),
        retraining_section(record),
        deployment_section(record, plot_links),
        operator_section(record),
        shap_section(record, plot_links),
        fairness_section(record),
        baseline_section(record, plot_links.get(BASELINE_FILE)),
        failure_section(record),
        timings_section(record),
        _plots_section(
            {
                n: link
                for n, link in plot_links.items()
                if plot_stem(n) != SHAP_PLOT and n != BASELINE_FILE and n not in PACKAGE_ASSETS
            }
        ),
        _spec_section(record),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def render_index(rows: list[dict[str, Any]]) -> str:
    """Render the index of all runs, newest first.

    Args:
        rows: one mapping per record: its front matter (``record_front_matter`` keys) plus
            ``record_path``, the record's link relative to the index file.

    Returns:
        The Markdown index, ending with a newline.
    """
    ordered = sorted(rows, key=lambda r: (_utc(r.get("started_at")), str(r.get("record_id") or "")))
    lines = [
        "# Training history",
        "",
        f"{len(rows)} run(s), newest first. Each record holds the spec, metrics, verdict and timings.",
        "",
        "| Date | Issue | Record | Status | Model version | Main metric |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_index_row(row) for row in reversed(ordered)]
    return "\n".join(lines) + "\n"


def _title(record: HistoryRecord) -> str:
    issue = record.issue
    title = inline(issue.title).replace("[", "\\[").replace("]", "\\]")
    label = f"#{issue.number} {title}".rstrip()
    shown = f"[{label}]({issue.url})" if issue.url else label
    return f"# Issue #{issue.number} — {_run_name(record)} — {record.status}\n\nIssue: {shown}"


def _summary(record: HistoryRecord) -> str:
    model, data, job = record.model, record.dataset, record.training
    duration = f", {job.duration_s:.1f} s" if job and job.duration_s is not None else ""
    rows = [
        ("Execution", f"`{record.record_id}`"),
        ("Attempt", str(record.attempt)),
        ("Status", record.status),
        ("Verdict", str((record.verdict or {}).get("verdict") or NONE)),
        ("Model", f"{model.name} v{model.version} ({model.semantic_version})" if model else NONE),
        ("Dataset", f"`{data.dataset_id}` (version `{data.data_version}`)" if data else NONE),
        ("Training job", f"`{job.job_name}` ({job.status}{duration})" if job else NONE),
        ("Started", record.started_at),
        ("Finished", record.finished_at),
    ]
    rows += [("Note", note) for note in (job.notes if job else [])]
    body = "\n".join(f"| {name} | {cell(value)} |" for name, value in rows)
    return f"## Summary\n\n| Field | Value |\n|---|---|\n{body}"


def _metrics_section(record: HistoryRecord) -> str:
    metrics = record_metrics(record)
    names = list(record.thresholds) + [m for m in metrics if m not in record.thresholds]
    if not names:
        return f"## Metrics against thresholds\n\n{NONE} no metrics were measured."
    rows = [_metric_row(name, metrics.get(name), record.thresholds.get(name)) for name in names]
    header = "| Metric | Value | Threshold | Result |\n|---|---|---|---|"
    return "## Metrics against thresholds\n\n" + header + "\n" + "\n".join(rows)


def _metric_row(name: str, value: float | None, threshold: float | None) -> str:
    shown = num(value) if value is not None else "missing"
    if threshold is None:
        return f"| {name} | {shown} | {NONE} | {NONE} |"
    sign = "≤" if name in LOWER_IS_BETTER else "≥"
    result = "pass" if value is not None and metric_passes(name, value, threshold) else "fail"
    return f"| {name} | {shown} | {sign} {num(threshold)} | {result} |"


def _plots_section(plot_links: dict[str, str]) -> str:
    if not plot_links:
        return ""
    items = []
    for name, link in sorted(plot_links.items()):
        label = name.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("_", " ")
        embed = "!" if link.lower().endswith(_IMAGE_SUFFIXES) else ""
        items.append(f"{embed}[{label}]({link.replace(' ', '%20')})")
    return "## Plots\n\n" + "\n\n".join(items)


def _spec_section(record: HistoryRecord) -> str:
    text = yaml.safe_dump(record.spec, sort_keys=False, allow_unicode=True).rstrip("\n")
    marks = fence(text)
    return f"## Spec\n\nSpec hash: `{record.spec_hash}`\n\n{marks}yaml\n{text}\n{marks}"


def _index_row(row: dict[str, Any]) -> str:
    issue = f"#{row.get('issue', '?')}"
    issue_cell = f"[{issue}]({row['issue_url']})" if row.get("issue_url") else issue
    record_cell = f"[{cell(str(row.get('record_id') or 'record'))}]({row.get('record_path', '')})"
    version = NONE
    if row.get("model_name"):
        version = f"{row['model_name']} v{row.get('model_version')}"
        if row.get("semantic_version"):
            version += f" ({row['semantic_version']})"
    metric = row.get("main_metric")
    value = (row.get("metrics") or {}).get(metric) if metric else None
    metric_cell = f"{metric} {num(value)}" if metric and value is not None else NONE
    date = _utc(row.get("started_at"))[:16].replace("T", " ") or NONE
    cells = [date, issue_cell, record_cell, str(row.get("status") or "unknown"), cell(version), metric_cell]
    return "| " + " | ".join(cells) + " |"


def _run_name(record: HistoryRecord) -> str:
    if record.model is not None:
        return record.model.name
    if record.spec.get("model_name"):
        return str(record.spec["model_name"])
    base = record.dataset.name if record.dataset else (record.spec.get("dataset") or {}).get("name")
    task = record.spec.get("task")
    name = "-".join(str(part) for part in (base, task) if part)
    return _UNSAFE.sub("-", name).strip("-") or "run"


def _utc(started_at: object) -> str:
    """Return ``started_at`` as a sortable UTC timestamp (unparsable values sort first)."""
    try:
        moment = datetime.fromisoformat(str(started_at))
    except ValueError:
        return ""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()
