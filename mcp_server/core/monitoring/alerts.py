"""Alert rules, incidents and retraining triggers over a monitoring job's findings. Pure.

- ``findings``: the spec's rules (FR-023) against a report and the endpoint's traffic: a
  feature's PSI over ``drift_psi``, a model-quality metric under its floor (the metric's
  direction honoured), the 5xx rate over ``error_rate``, the p95 latency over
  ``p95_latency_ms``, and capture lines that could not be read.
- ``incident_changes``: one alert per incident. A finding whose key has no open incident opens
  one (and is alerted); a key still firing stays open silently; an open key that no longer
  fires is resolved (and a resolved notice goes out).
- ``retraining_reasons``: which triggers (FR-025) the findings fire.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcp_server.core.deployment.metrics import VariantMetrics
from mcp_server.core.monitoring.models import Finding, Incident, MonitoringReport
from mcp_server.core.spec import catalog
from mcp_server.core.spec.schema import MonitoringSpec, TriggersSpec


def findings(
    report: MonitoringReport,
    monitoring: MonitoringSpec,
    traffic: Mapping[str, VariantMetrics] | None = None,
) -> list[Finding]:
    """The rules that fire for one monitoring job (see the module).

    Args:
        report: the job's report.
        monitoring: the spec's monitoring section (thresholds).
        traffic: production variant -> its metrics over the window (None: not checked).

    Returns:
        The findings, drift first.
    """
    found: list[Finding] = []
    drifted = [f for f in report.features if f.drifted]
    if drifted:
        worst = max(drifted, key=lambda f: f.psi)
        names = ", ".join(f"{f.feature} (PSI {f.psi:.3f})" for f in sorted(drifted, key=lambda f: -f.psi)[:5])
        more = f" and {len(drifted) - 5} more" if len(drifted) > 5 else ""
        found.append(
            Finding(
                kind="drift",
                key="drift",
                summary=f"{len(drifted)} feature(s) drifted past PSI {monitoring.drift_psi:g}: {names}{more}",
                value=worst.psi,
                threshold=monitoring.drift_psi,
            )
        )
    for metric, floor in monitoring.metric_floor.items():
        finding = _floor_finding(report, metric, floor)
        if finding is not None:
            found.append(finding)
    for variant in (traffic or {}).values():
        found.extend(_traffic_findings(variant, monitoring))
    if report.bad_lines:
        found.append(
            Finding(
                kind="capture",
                key="capture",
                summary=f"{report.bad_lines} captured line(s) could not be read and were skipped",
                value=float(report.bad_lines),
            )
        )
    return found


def below_floor(metric: str, value: float, floor: float) -> bool:
    """Whether ``value`` misses ``floor``: under it, or over it for a lower-is-better metric."""
    return value > floor if metric in catalog.LOWER_IS_BETTER else value < floor


def _floor_finding(report: MonitoringReport, metric: str, floor: float) -> Finding | None:
    value = report.quality.get(metric)
    if value is None or not below_floor(metric, value, floor):
        return None
    side = "above its ceiling" if metric in catalog.LOWER_IS_BETTER else "below its floor"
    return Finding(
        kind="metric_floor",
        key=f"metric_floor:{metric}",
        summary=f"{metric} {value:.4f} on {report.labelled_rows} labelled rows is {side} {floor:g}",
        value=value,
        threshold=floor,
    )


def _traffic_findings(variant: VariantMetrics, monitoring: MonitoringSpec) -> list[Finding]:
    found = []
    limit = monitoring.error_rate
    if limit is not None and variant.requests and variant.error_rate > limit:
        found.append(
            Finding(
                kind="error_rate",
                key=f"error_rate:{variant.variant}",
                summary=(
                    f"variant {variant.variant}: 5xx rate {variant.error_rate:.2%} of {variant.requests} "
                    f"requests is over {limit:.2%}"
                ),
                value=variant.error_rate,
                threshold=limit,
            )
        )
    latency = monitoring.p95_latency_ms
    if latency is not None and variant.p95_ms is not None and variant.p95_ms > latency:
        found.append(
            Finding(
                kind="p95_latency",
                key=f"p95_latency:{variant.variant}",
                summary=(
                    f"variant {variant.variant}: p95 latency {variant.p95_ms:.1f} ms is over {latency:g} ms"
                ),
                value=variant.p95_ms,
                threshold=latency,
            )
        )
    return found


def incident_changes(
    incidents: Mapping[str, Incident], found: list[Finding], now: str
) -> tuple[list[Finding], list[Incident], dict[str, Incident]]:
    """Split findings into new incidents and resolved ones (see the module).

    Args:
        incidents: the open incidents by key.
        found: this job's findings.
        now: the job's time (ISO-8601 UTC).

    Returns:
        ``(opened, resolved, open_after)``: findings to alert on, incidents to announce as
        resolved, and the open incidents after this job.
    """
    firing = {f.key: f for f in found}
    opened = [f for key, f in firing.items() if key not in incidents]
    resolved = [incident for key, incident in incidents.items() if key not in firing]
    after = {
        key: (
            incidents[key].model_copy(update={"last_seen_at": now})
            if key in incidents
            else Incident(key=key, opened_at=now, last_seen_at=now, summary=finding.summary)
        )
        for key, finding in firing.items()
    }
    return opened, resolved, after


def retraining_reasons(report: MonitoringReport, triggers: TriggersSpec | None) -> list[tuple[str, str]]:
    """The drift and metric-floor triggers the report fires, as ``(kind, reason)`` pairs.

    Args:
        report: the monitoring job's report.
        triggers: the spec's retraining triggers (None: none).
    """
    if triggers is None:
        return []
    reasons: list[tuple[str, str]] = []
    if triggers.drift_psi is not None:
        over = [f for f in report.features if f.psi > triggers.drift_psi]
        if over:
            worst = max(over, key=lambda f: f.psi)
            reasons.append(
                (
                    "drift",
                    f"{len(over)} feature(s) over PSI {triggers.drift_psi:g}, "
                    f"the largest {worst.feature} at {worst.psi:.3f}",
                )
            )
    for metric, floor in triggers.metric_floor.items():
        value = report.quality.get(metric)
        if value is not None and below_floor(metric, value, floor):
            reasons.append(("metric_floor", f"{metric} {value:.4f} missed its floor {floor:g}"))
    return reasons
