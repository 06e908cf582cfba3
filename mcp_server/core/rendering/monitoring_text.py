"""What monitoring says on the issue and to the alert channels. Pure.

- ``monitoring_on_comment``: posted when a deployment turns monitoring on (its schedule, rules,
  channels and retraining triggers).
- ``alert_markdown`` / ``alert_text``: an alert for the incidents a monitoring job opened, with
  the drifted features (PSI, KS or chi-squared), the plots of the baseline against the captured
  distributions, model quality, and what happens next.
- ``resolved_markdown`` / ``resolved_text``: the notice that incidents cleared.
- ``retraining_comment``: a retrain execution started by a trigger.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp_server.core.monitoring.models import Finding, Incident, MonitoringReport, MonitoringSchedule
from mcp_server.core.rendering.markdown_text import cell

#: Features listed in an alert's table.
MAX_ROWS = 15


def _channels(schedule: MonitoringSchedule) -> str:
    if schedule.monitoring is None:
        return "none"
    alerts = schedule.monitoring.alerts
    names = [
        name
        for name, on in (
            ("this issue", alerts.github),
            ("Slack", alerts.slack),
            (f"e-mail ({', '.join(alerts.email)})", bool(alerts.email)),
            ("SNS", alerts.sns),
        )
        if on
    ]
    return ", ".join(names) or "none"


def triggers_text(schedule: MonitoringSchedule) -> str:
    """The retraining triggers in words (``none`` without any)."""
    triggers = schedule.triggers
    if triggers is None:
        return "none"
    parts = []
    if triggers.schedule:
        parts.append(f"on `{triggers.schedule}`")
    if triggers.drift_psi is not None:
        parts.append(f"when a feature's PSI exceeds {triggers.drift_psi:g}")
    for metric, floor in triggers.metric_floor.items():
        parts.append(f"when {metric} on labelled traffic misses {floor:g}")
    if triggers.data_change:
        parts.append("when the dataset source changes")
    if triggers.code_change:
        parts.append("when a push to the default branch changes its code under `training_containers/`")
    return "; ".join(parts) or "none"


def monitoring_on_comment(schedule: MonitoringSchedule, where: str) -> str:
    """The comment that says monitoring is on for a deployed endpoint.

    Args:
        schedule: the endpoint's monitoring schedule.
        where: who runs it (``mlops serve`` locally, EventBridge Scheduler on AWS).
    """
    lines = [
        f"### Monitoring is on: `{schedule.endpoint_name}` ({schedule.model_name} {schedule.model_version})",
        "",
    ]
    monitoring = schedule.monitoring
    if monitoring is not None:
        rules = [f"a feature's PSI over {monitoring.drift_psi:g}"]
        rules += [f"{metric} under {floor:g}" for metric, floor in monitoring.metric_floor.items()]
        if monitoring.error_rate is not None:
            rules.append(f"5xx rate over {monitoring.error_rate:.2%}")
        if monitoring.p95_latency_ms is not None:
            rules.append(f"p95 latency over {monitoring.p95_latency_ms:g} ms")
        lines += [
            f"- Schedule: `{monitoring.schedule}` (UTC), run by {where}",
            f"- Alerts when: {'; '.join(rules)}",
            f"- Alerts go to: {_channels(schedule)}",
        ]
    else:
        lines.append(f"- No monitoring job; retraining schedules run by {where}")
    lines.append(f"- Retraining: {triggers_text(schedule)}")
    if schedule.spec.get("retraining", {}).get("feedback"):
        lines.append("- Feedback: labelled captured requests join the data of the next triggered retrain")
    lines += [
        "",
        f"Run it now with `mlops monitor {schedule.endpoint_name}`; send ground truth with "
        f"`mlops feedback {schedule.endpoint_name} labels.csv` (columns `inference_id,label`).",
    ]
    return "\n".join(lines)


def alert_markdown(
    schedule: MonitoringSchedule,
    report: MonitoringReport,
    opened: list[Finding],
    report_url: str,
    plot_urls: Mapping[str, str],
    next_step: str,
) -> str:
    """The GitHub alert for the incidents a job opened (see the module).

    Args:
        schedule: the endpoint's schedule.
        report: the job's report.
        opened: the findings that opened incidents.
        report_url: where the report was committed.
        plot_urls: plot name -> an image URL that renders in a comment.
        next_step: what happens next (a retrain started, or how to start one).
    """
    lines = [
        f"### Monitoring alert: `{schedule.endpoint_name}` ({schedule.model_name} {schedule.model_version})",
        "",
        *[f"- **{finding.kind.replace('_', ' ')}**: {finding.summary}" for finding in opened],
        "",
        f"Window {report.since or 'from the first capture'} to {report.until}: {report.records} captured "
        f"request(s), {report.rows} row(s)"
        + (f", {report.bad_lines} unreadable line(s) skipped" if report.bad_lines else "")
        + f". Job `{report.job_name}`: {report.status}, {report.violations} violation(s).",
        "",
    ]
    drifted = sorted((f for f in report.features if f.drifted), key=lambda f: -f.psi)
    if drifted:
        lines += ["| feature | PSI | test | statistic | p-value |", "|---|---|---|---|---|"]
        for drift in drifted[:MAX_ROWS]:
            statistic = f"{drift.statistic:.4f}" if drift.statistic is not None else "—"
            p_value = f"{drift.p_value:.3g}" if drift.p_value is not None else "—"
            test = {"ks": "KS", "chi_squared": "chi-squared"}.get(drift.test or "", "—")
            lines.append(f"| {cell(drift.feature)} | {drift.psi:.4f} | {test} | {statistic} | {p_value} |")
        if len(drifted) > MAX_ROWS:
            lines.append(f"| … {len(drifted) - MAX_ROWS} more | | | | |")
        lines.append("")
    if report.prediction is not None:
        lines += [f"Prediction drift against the training labels: PSI {report.prediction.psi:.4f}.", ""]
    if report.quality:
        shown = ", ".join(f"{metric} {value:.4f}" for metric, value in report.quality.items())
        lines += [f"Model quality on {report.labelled_rows} labelled row(s): {shown}.", ""]
    if report.unknown_ground_truth:
        lines += [
            f"{report.unknown_ground_truth} ground-truth label(s) matched no captured request "
            "(unknown inference ids); they were left out.",
            "",
        ]
    for name, url in list(plot_urls.items())[:6]:
        stem = name.rsplit("/", 1)[-1].removesuffix(".png").removeprefix("drift_")
        lines.append(f"![{stem}: baseline against captured]({url})")
    if plot_urls:
        lines.append("")
    lines += [f"Full report: {report_url}", "", next_step]
    return "\n".join(lines)


def alert_text(
    schedule: MonitoringSchedule, report: MonitoringReport, opened: list[Finding], report_url: str
) -> str:
    """The plain-text alert (Slack, e-mail, SNS)."""
    lines = [f"Endpoint {schedule.endpoint_name} ({schedule.model_name} {schedule.model_version}):"]
    lines += [f"- {finding.summary}" for finding in opened]
    lines.append(
        f"Window {report.since or 'start'} to {report.until}, {report.rows} rows; report: {report_url}"
    )
    if schedule.issue.url:
        lines.append(f"Issue: {schedule.issue.url}")
    return "\n".join(lines)


def resolved_markdown(schedule: MonitoringSchedule, resolved: list[Incident], job_name: str) -> str:
    """The notice that incidents cleared at a job."""
    lines = [f"### Resolved: `{schedule.endpoint_name}`", ""]
    lines += [f"- {incident.summary} (since {incident.opened_at})" for incident in resolved]
    lines += ["", f"Monitoring job `{job_name}` no longer finds it."]
    return "\n".join(lines)


def resolved_text(schedule: MonitoringSchedule, resolved: list[Incident]) -> str:
    """The plain-text resolved notice."""
    return "\n".join(
        [f"Endpoint {schedule.endpoint_name}: resolved"] + [f"- {incident.summary}" for incident in resolved]
    )


def retraining_comment(kind: str, reason: str, execution_name: str, endpoint_name: str) -> str:
    """The comment that a trigger started a retrain execution."""
    return (
        f"### Retraining started ({kind.replace('_', ' ')})\n\n"
        f"{reason}. Endpoint `{endpoint_name}`: a retrain run of the last spec on fresh data started as "
        f"execution `{execution_name}`. It goes through the same workflow: the judge, the "
        "champion/challenger comparison on the same test split and the spec's deployment strategy."
    )
