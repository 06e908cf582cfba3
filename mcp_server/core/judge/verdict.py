"""The judge: metrics and thresholds in, a verdict, its reasons and suggestions out. Pure.

A threshold is a floor for metrics where larger is better and a ceiling for error metrics
(``catalog.LOWER_IS_BETTER``: rmse, mae, mape, log_loss, davies_bouldin). A thresholded metric
that the evaluation did not produce fails its check: the gate cannot be passed by omission. A
fairness report that failed its ``max_difference`` fails the gate too.

A miss is ``retry`` while attempts are left (the operator may adjust the spec and retrain),
``fail`` on the last attempt. The suggestions explaining a miss are made in
``core.judge.suggestions`` (its docstring lists the heuristics and their sources).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_server.core.judge.suggestions import Suggestion, suggest, suggested_patch, train_value
from mcp_server.core.models import EvaluationReport, FairnessReport
from mcp_server.core.spec.catalog import metric_direction

__all__ = ["ThresholdCheck", "Verdict", "Suggestion", "judge", "suggested_patch"]

VerdictKind = Literal["pass", "retry", "fail"]


class ThresholdCheck(BaseModel):
    """One metric against its threshold."""

    metric: str
    value: float | None
    threshold: float
    direction: Literal["maximize", "minimize"]
    passed: bool

    @property
    def comparator(self) -> str:
        """``≥`` for a floor, ``≤`` for a ceiling."""
        return "≥" if self.direction == "maximize" else "≤"


class Verdict(BaseModel):
    """The judge's decision.

    Attributes:
        verdict: ``pass`` (every check and the fairness check passed), ``retry`` (a miss with
            attempts left) or ``fail`` (a miss on the last attempt).
        checks: one per thresholded metric, in threshold order.
        reasons: one line per check, then the fairness check, then, for a miss that the report
            does not explain, why no suggestion could be made.
        attempt: this attempt, 1-based.
        max_attempts: the retry budget (``retraining.max_attempts``).
        attempts_left: ``max_attempts - attempt``, never negative.
        fairness: ``None`` without a fairness report, else ``{metric, sensitive_feature,
            difference, max_difference, passed}``.
        suggestions: what to change, each with the figure that triggered it; ``[]`` on a pass.
    """

    verdict: VerdictKind
    checks: list[ThresholdCheck]
    reasons: list[str]
    attempt: int
    max_attempts: int = 1
    attempts_left: int = 0
    fairness: dict[str, Any] | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)


def judge(
    metrics: dict[str, float],
    thresholds: dict[str, float],
    attempt: int = 1,
    max_attempts: int = 1,
    report: EvaluationReport | None = None,
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    task: str | None = None,
) -> Verdict:
    """Decide whether a model passes its thresholds, and if not, why and what to change.

    Args:
        metrics: metric name -> value on the test split.
        thresholds: metric name -> the value it must reach (floor, or ceiling for error metrics).
        attempt: the attempt number (1-based).
        max_attempts: the retry budget; with the default 1 a miss is ``fail``.
        report: the evaluation report (train/validation metrics, class counts, fairness, SHAP);
            without it only the thresholds are judged and no suggestion is made.
        algorithm: the spec's algorithm, for the suggestions' hyperparameter patches.
        hyperparameters: the spec's hyperparameters (missing ones take the library defaults).
        task: the spec's task (class weights are suggested for classification only).

    Returns:
        The verdict; one reason per check, e.g. ``f1 0.9123 < 0.95 (must be ≥ 0.95)``.
    """
    checks = [_check(metric, threshold, metrics) for metric, threshold in thresholds.items()]
    fairness = report.fairness if report is not None else None
    reasons = [_reason(c) for c in checks]
    if fairness is not None:
        reasons.append(_fairness_reason(fairness))
    elif not checks:
        reasons = ["no thresholds were set: the model is accepted as trained"]
    passed = all(c.passed for c in checks) and (fairness is None or fairness.passed)
    suggestions: list[Suggestion] = []
    if not passed:
        failed = [c.metric for c in checks if not c.passed and c.value is not None]
        suggestions = suggest(failed, thresholds, report, algorithm, hyperparameters, task)
        if report is not None and not suggestions:
            reasons.append(_undiagnosed(report, failed))
    return Verdict(
        verdict="pass" if passed else ("retry" if attempt < max_attempts else "fail"),
        checks=checks,
        reasons=reasons,
        attempt=attempt,
        max_attempts=max_attempts,
        attempts_left=max(0, max_attempts - attempt),
        fairness=_fairness_summary(fairness),
        suggestions=suggestions,
    )


def _check(metric: str, threshold: float, metrics: dict[str, float]) -> ThresholdCheck:
    direction = metric_direction(metric)
    raw = metrics.get(metric)
    value = None if raw is None or math.isnan(raw) else raw
    passed = value is not None and (value >= threshold if direction == "maximize" else value <= threshold)
    return ThresholdCheck(
        metric=metric, value=value, threshold=threshold, direction=direction, passed=bool(passed)
    )


def _reason(check: ThresholdCheck) -> str:
    if check.value is None:
        bound = f"{check.comparator} {check.threshold:g}"
        return f"{check.metric} was not produced by the evaluation (must be {bound})"
    if check.passed:
        return f"{check.metric} {check.value:.4f} meets {check.comparator} {check.threshold:g}"
    sign = "<" if check.direction == "maximize" else ">"
    return (
        f"{check.metric} {check.value:.4f} {sign} {check.threshold:g} "
        f"(must be {check.comparator} {check.threshold:g})"
    )


def _fairness_reason(fairness: FairnessReport) -> str:
    what = (
        f"fairness: {fairness.metric} differs by {fairness.difference:.4f} across the groups of "
        f"'{fairness.sensitive_feature}'"
    )
    limit = f"{fairness.max_difference:g}"
    return f"{what}, within ≤ {limit}" if fairness.passed else f"{what} > {limit} (must be ≤ {limit})"


def _fairness_summary(fairness: FairnessReport | None) -> dict[str, Any] | None:
    if fairness is None:
        return None
    return {
        "metric": fairness.metric,
        "sensitive_feature": fairness.sensitive_feature,
        "difference": fairness.difference,
        "max_difference": fairness.max_difference,
        "passed": fairness.passed,
    }


def _undiagnosed(report: EvaluationReport, failed: list[str]) -> str:
    lead = "no cause was diagnosed"
    blind = [m for m in failed if train_value(report, m) is None]
    if blind:
        return (
            f"{lead}: the training-split value of {', '.join(blind)} was not reported, so over- and "
            "underfitting could not be checked"
        )
    if not failed:
        return f"{lead}: a thresholded metric was not measured; check evaluation.metrics"
    return (
        f"{lead}: train and test scores are close, the train score meets the threshold and no "
        "class imbalance was found; try better features, more data or another algorithm"
    )
