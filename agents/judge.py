"""Agent of the Judge state: pure logic, no MCP call."""

from __future__ import annotations

from typing import Any

from agents.runtime import step
from mcp_server.core.judge.verdict import Verdict, judge
from mcp_server.core.models import EvaluationReport
from mcp_server.core.spec.schema import TrainingSpec


def decide(state: dict[str, Any]) -> Verdict:
    """Judge the evaluation against the spec's thresholds, fairness limit and retry budget."""
    spec = TrainingSpec.model_validate(state["spec"])
    report = EvaluationReport.model_validate(state["evaluation"])
    return judge(
        report.metrics,
        spec.evaluation.thresholds,
        attempt=int(state.get("attempt", 1)),
        max_attempts=spec.retraining.max_attempts,
        report=report,
        algorithm=spec.algorithm,
        hyperparameters=spec.hyperparameters,
        task=spec.task,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``verdict`` added (``verdict.verdict``: pass, retry or fail)."""
    return step(event, "verdict", decide)
