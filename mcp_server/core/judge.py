"""The judge: metrics and thresholds in, a verdict and its reasons out. Pure.

A threshold is a floor for metrics where larger is better and a ceiling for error metrics
(``catalog.LOWER_IS_BETTER``: rmse, mae, mape, log_loss, davies_bouldin). A thresholded metric
that the evaluation did not produce fails its check: the gate cannot be passed by omission.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from mcp_server.core.catalog import metric_direction


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
    """The judge's decision: ``pass`` or ``fail``, the checks, and why."""

    verdict: Literal["pass", "fail"]
    checks: list[ThresholdCheck]
    reasons: list[str]
    attempt: int


def judge(metrics: dict[str, float], thresholds: dict[str, float], attempt: int = 1) -> Verdict:
    """Decide whether a model passes its thresholds.

    Args:
        metrics: metric name -> value on the test split.
        thresholds: metric name -> the value it must reach (floor, or ceiling for error metrics).
        attempt: the attempt number (1-based), carried into the verdict.

    Returns:
        ``pass`` when every check passes (or there are no thresholds), else ``fail``; one reason
        per check, e.g. ``f1 0.9123 < 0.95 (must be ≥ 0.95)``.
    """
    checks = []
    for metric, threshold in thresholds.items():
        direction = metric_direction(metric)
        raw = metrics.get(metric)
        value = None if raw is None or math.isnan(raw) else raw
        passed = value is not None and (value >= threshold if direction == "maximize" else value <= threshold)
        checks.append(
            ThresholdCheck(
                metric=metric,
                value=value,
                threshold=threshold,
                direction=direction,
                passed=bool(passed),
            )
        )
    reasons = [_reason(c) for c in checks]
    if not checks:
        reasons = ["no thresholds were set: the model is accepted as trained"]
    verdict: Literal["pass", "fail"] = "pass" if all(c.passed for c in checks) else "fail"
    return Verdict(verdict=verdict, checks=checks, reasons=reasons, attempt=attempt)


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
