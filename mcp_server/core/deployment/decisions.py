"""The decisions of a deployment: a traffic step's alarms and the champion/challenger gate. Pure."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.deployment.metrics import VariantMetrics
from mcp_server.core.spec import catalog
from mcp_server.core.spec.schema import RollbackSpec, TrainingSpec


class AlarmCheck(BaseModel):
    """The alarms of one traffic step, as CheckAlarms saw them.

    Attributes:
        breached: whether a limit was crossed (the deployment rolls back).
        reasons: each crossed limit, with the measured value and the limit.
        metrics: the challenger's metrics over the step's window.
    """

    model_config = ConfigDict(extra="forbid")

    breached: bool
    reasons: list[str]
    metrics: VariantMetrics


def check_alarms(metrics: VariantMetrics, limits: RollbackSpec) -> AlarmCheck:
    """Compare the challenger's window with the spec's ``rollback_on`` limits (FR-020).

    The error rate counts 5xx answers only; a window without requests crosses nothing (as a
    CloudWatch alarm with missing data stays out of ALARM).
    """
    reasons = []
    if metrics.requests and metrics.error_rate > limits.error_rate:
        reasons.append(
            f"error rate {metrics.error_rate:.2%} ({metrics.errors_5xx} of {metrics.requests} requests "
            f"failed) is above rollback_on.error_rate {limits.error_rate:.2%}"
        )
    if metrics.p95_ms is not None and metrics.p95_ms > limits.p95_latency_ms:
        reasons.append(
            f"p95 latency {metrics.p95_ms:.1f} ms is above rollback_on.p95_latency_ms "
            f"{limits.p95_latency_ms:g} ms"
        )
    return AlarmCheck(breached=bool(reasons), reasons=reasons, metrics=metrics)


def objective(spec: TrainingSpec) -> str:
    """The metric champion and challenger are compared on.

    The tuning objective when the spec tunes, else the first thresholded metric, else the first
    reported metric of the task.
    """
    if spec.tuning is not None:
        return spec.tuning.objective
    if spec.evaluation.thresholds:
        return next(iter(spec.evaluation.thresholds))
    return spec.metrics[0]


class ChampionComparison(BaseModel):
    """The champion/challenger gate (FR-026) on one metric of the same held-out test split.

    Attributes:
        metric: the objective compared.
        challenger, champion: their values (champion None when it could not be scored).
        deploy: whether the challenger may take traffic.
        reason: one sentence for the record and the comment.
        champion_version: the champion's semantic version, when one was scored.
        challenger_metrics, champion_metrics: every test metric of each on the same split
            (the version diff report's side-by-side table; empty when not scored).
    """

    model_config = ConfigDict(extra="forbid")

    metric: str
    challenger: float | None
    champion: float | None
    deploy: bool
    reason: str
    champion_version: str = ""
    challenger_metrics: dict[str, float] = Field(default_factory=dict)
    champion_metrics: dict[str, float] = Field(default_factory=dict)


def compare_with_champion(
    metric: str, challenger: float | None, champion: float | None
) -> ChampionComparison:
    """Deploy the challenger only when it is at least as good as the champion on ``metric``.

    ``champion`` None (no champion, or one that could not be scored on this split) lets the
    challenger through; the reason says so. "At least as good" honours the metric's direction
    (``catalog.metric_direction``): equal values deploy.
    """
    if champion is None or challenger is None:
        reason = (
            "no champion to compare with"
            if champion is None
            else f"the challenger has no {metric}; deployed without comparison"
        )
        return ChampionComparison(
            metric=metric, challenger=challenger, champion=champion, deploy=True, reason=reason
        )
    better = (
        challenger <= champion if catalog.metric_direction(metric) == "minimize" else challenger >= champion
    )
    relation = "at least as good as" if better else "worse than"
    reason = (
        f"challenger {metric} {challenger:.4g} is {relation} the champion's {champion:.4g} "
        "on the same test split"
    )
    if not better:
        reason += "; held back (comment /deploy to deploy it anyway)"
    return ChampionComparison(
        metric=metric, challenger=challenger, champion=champion, deploy=better, reason=reason
    )
