"""The deployment's part of a run's history record and closing comment. Pure."""

from __future__ import annotations

from mcp_server.core.deployment.metrics import VariantMetrics
from mcp_server.core.deployment.progress import DeploymentProgress
from mcp_server.core.models import HistoryRecord

#: What each final status says, for people.
OUTCOMES = {
    "promoted": "promoted: the challenger serves 100% of traffic",
    "rolled_back": "rolled back: the champion serves 100% of traffic again",
    "held": "held back: the champion keeps serving",
    "ab_running": "A/B: both variants keep serving",
}


#: The packaging files committed beside a record (asset name -> ModelPackageFiles field).
PACKAGE_ASSETS = {
    "package/Dockerfile": "dockerfile_uri",
    "package/openapi.json": "openapi_uri",
    "package/requirements.txt": "requirements_uri",
}


def package_files(record: HistoryRecord) -> dict[str, str]:
    """Asset name -> URI of the version's packaging files, to commit beside the record."""
    progress = progress_of(record)
    if progress is None or progress.package is None:
        return {}
    package = progress.package.model_dump()
    return {name: package[field] for name, field in PACKAGE_ASSETS.items() if package.get(field)}


def progress_of(record: HistoryRecord) -> DeploymentProgress | None:
    """The record's deployment progress, or None when the run did not deploy."""
    return DeploymentProgress.model_validate(record.deployment) if record.deployment else None


def deployment_lines(record: HistoryRecord) -> list[str]:
    """The closing comment's lines: endpoint, variants, each step with its metrics, the outcome."""
    progress = progress_of(record)
    if progress is None:
        return []
    outcome = OUTCOMES.get(
        progress.status,
        f"not finished (it stopped while {progress.status}); the endpoint serves what it served before",
    )
    lines = [f"**Deployment: {outcome}**"]
    if progress.url:
        lines.append(f"- Endpoint `{progress.endpoint_name}` ({progress.target}): {progress.url}")
    else:
        lines.append(f"- Endpoint `{progress.endpoint_name}` ({progress.target})")
    variants = f"challenger `{progress.challenger}` ({progress.challenger_version})"
    if progress.champion:
        variants = f"champion `{progress.champion}`, " + variants
    lines.append(f"- Strategy {progress.strategy}: {variants}")
    if progress.comparison is not None:
        lines.append(f"- Champion/challenger: {progress.comparison.reason}")
    operator = record.operator or {}
    if operator.get("action") == "deploy":
        lines.append(
            f"- Deployed at the request of @{operator.get('by', '?')} (`/deploy`), over the gate's verdict"
        )
    for index, done in enumerate(progress.steps_done, start=1):
        verdict = "crossed " + "; ".join(done.reasons) if done.breached else "passed"
        lines.append(f"- Step {index} at {done.percent}%: {_metrics(done.challenger)}; {verdict}")
    if progress.reason and progress.status in ("rolled_back", "held", "ab_running", "promoted"):
        lines.append(f"- {progress.reason}")
    if progress.status == "held":
        lines.append("- Comment `/deploy` to deploy it anyway.")
    return lines


def deployment_section(record: HistoryRecord, links: dict[str, str] | None = None) -> str:
    """The record's ``## Deployment`` section: outcome, endpoint, gate, steps table, packaging.

    Args:
        record: the run's record.
        links: asset name -> link relative to the record (the committed packaging files).
    """
    progress = progress_of(record)
    if progress is None:
        return ""
    parts = ["## Deployment", "\n".join(deployment_lines(record)[1:])]
    parts[0] += f"\n\n{OUTCOMES.get(progress.status, progress.status).capitalize()}."
    if progress.steps_done:
        rows = [
            "| step | challenger share | requests | validation requests | 5xx rate | p95 | alarms |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for index, done in enumerate(progress.steps_done, start=1):
            metrics = done.challenger
            p95 = f"{metrics.p95_ms:.1f} ms" if metrics.p95_ms is not None else "n/a"
            alarms = "; ".join(done.reasons) if done.breached else "ok"
            rows.append(
                f"| {index} | {done.percent}% | {metrics.requests} | {done.validation_requests} | "
                f"{metrics.error_rate:.2%} | {p95} | {alarms} |"
            )
        parts.append("\n".join(rows))
    links = links or {}
    if progress.package is not None and "package/Dockerfile" in links:
        parts.append(
            f"Packaging: [Dockerfile]({links['package/Dockerfile']}) with its "
            f"[pinned requirements]({links.get('package/requirements.txt', '')}), "
            f"[OpenAPI document]({links.get('package/openapi.json', '')}), "
            f"image `{progress.package.image_uri}`."
        )
    return "\n\n".join(p for p in parts if p)


def _metrics(metrics: VariantMetrics) -> str:
    if not metrics.requests:
        return "no requests"
    p95 = f", p95 {metrics.p95_ms:.1f} ms" if metrics.p95_ms is not None else ""
    return f"{metrics.requests} requests, 5xx rate {metrics.error_rate:.2%}{p95}"


def _bump(previous: str, current: str, data_changed: bool = True) -> str:
    """Which part of the semantic version moved (``core.versioning``'s rules), in words.

    A patch is the data changing, or a retrain on the same spec and data (``data_changed``
    False: new code, or the same inputs again).
    """
    try:
        before = [int(p) for p in previous.split(".")[:3]]
        after = [int(p) for p in current.split(".")[:3]]
    except ValueError:
        return ""
    if after[0] != before[0]:
        return "major: the model type, algorithm or feature schema changed"
    if after[1] != before[1]:
        return "minor: hyperparameters or preprocessing changed"
    if after[2] != before[2]:
        return "patch: only the data changed" if data_changed else "patch: the same spec and data, retrained"
    return "no change"


def retraining_lines(record: HistoryRecord) -> list[str]:
    """A retrain run's version diff (FR-027): trigger, version bump, spec, data and metrics side by side.

    Empty for a run an issue started.
    """
    trigger = record.trigger
    if not trigger:
        return []
    kind = str(trigger.get("kind", "")).replace("_", " ")
    lines = [f"**Retraining ({kind} trigger)**: {trigger.get('reason') or 'no reason recorded'}"]
    if trigger.get("monitoring_job"):
        lines.append(
            f"- Monitoring job `{trigger['monitoring_job']}` on endpoint `{trigger.get('endpoint_name')}`"
        )
    previous, current = (
        trigger.get("previous_version") or "",
        record.model.semantic_version if record.model else "",
    )
    before_data = trigger.get("previous_data_version") or ""
    after_data = record.dataset.data_version if record.dataset else ""
    if previous and current:
        bump = _bump(previous, current, data_changed=not before_data or before_data != after_data)
        lines.append(f"- Version {previous} → {current}" + (f" ({bump})" if bump else ""))
    before_spec = trigger.get("previous_spec_hash") or ""
    if before_spec:
        same = before_spec == record.spec_hash
        lines.append(
            f"- Spec: unchanged (`{record.spec_hash}`)"
            if same
            else f"- Spec: `{before_spec}` → `{record.spec_hash}`"
        )
    if before_data and after_data:
        lines.append(
            f"- Data version: unchanged (`{after_data}`)"
            if before_data == after_data
            else f"- Data version: `{before_data}` → `{after_data}`"
        )
    if trigger.get("feedback_uri"):
        added = record.dataset.rows_feedback if record.dataset else 0
        dropped = record.dataset.rows_removed.get("feedback", 0) if record.dataset else 0
        lines.append(
            f"- Feedback: {added} labelled captured row(s) added to the data"
            + (f" ({dropped} dropped: their label is not a value of the target)" if dropped else "")
            + f", from `{trigger['feedback_uri'].rsplit('/', 3)[-3]}`"
        )
    progress = progress_of(record)
    comparison = progress.comparison if progress is not None else None
    if comparison is not None and comparison.champion_metrics:
        lines += [
            "",
            f"| metric (same test split) | champion {comparison.champion_version} | challenger {current} |",
            "| --- | --- | --- |",
        ]
        for metric, value in comparison.challenger_metrics.items():
            champion = comparison.champion_metrics.get(metric)
            shown = f"{champion:.4f}" if champion is not None else "—"
            lines.append(f"| {metric} | {shown} | {value:.4f} |")
    return lines


def retraining_section(record: HistoryRecord) -> str:
    """The record's ``## Retraining`` section (``""`` for a run an issue started)."""
    lines = retraining_lines(record)
    return "\n".join(["## Retraining", "", *lines]) if lines else ""
