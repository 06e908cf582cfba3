"""The judge's suggestion: one diagnosed cause of a miss and what to change, and its helpers. Pure.

``suggestions`` diagnoses supervised models and ``family_suggestions`` the other families; both
build this model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_server.core.models import EvaluationReport

SuggestionKind = Literal[
    "overfitting",
    "underfitting",
    "imbalance",
    "fairness",
    "cluster_structure",
    "embedding",
    "training_budget",
]


class Suggestion(BaseModel):
    """One diagnosed cause of a miss and what to change.

    Attributes:
        kind: overfitting, underfitting, imbalance or fairness.
        message: plain English: what was found and what to do.
        figure: the numbers that triggered it, e.g.
            ``train f1 1.000 vs test f1 0.912: gap 0.088 (> 0.05)``.
        metric: the metric the figure is about (``None`` for class imbalance).
        value: the triggering number (a gap, a ratio, a train score or a group difference).
        patch: hyperparameter name -> new value for this algorithm; ``{}`` when there is no
            automatic change. Wrap it as ``{"hyperparameters": patch}`` for a spec merge patch.
        section_patch: a merge patch of other spec sections, e.g.
            ``{"environment": {"total_timesteps": 200000}}``; ``{}`` when none.
    """

    kind: SuggestionKind
    message: str
    figure: str
    metric: str | None = None
    value: float | None = None
    patch: dict[str, Any] = Field(default_factory=dict)
    section_patch: dict[str, Any] = Field(default_factory=dict)


def train_value(report: EvaluationReport, metric: str) -> float | None:
    """Return ``metric`` on the training split: ``train_metrics``, else test value plus gap."""
    if metric in report.train_metrics:
        return report.train_metrics[metric]
    if metric in report.gaps and metric in report.metrics:
        return report.metrics[metric] + report.gaps[metric]
    return None


def fmt(value: float) -> str:
    """Format a figure: three decimals, or four significant digits for large values."""
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.4g}"
