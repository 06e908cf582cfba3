"""Agent of the Judge state: pure logic, no MCP call (result: ``$.verdict``)."""

from __future__ import annotations

from typing import Any

from agents.runtime import step
from mcp_server.core.judge.verdict import Verdict, judge
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.core.workflow.state import AgentEvent
from mcp_server.errors import EvaluationError


def decide(event: AgentEvent) -> Verdict:
    """Judge the evaluation against the spec's thresholds, fairness limit and retry budget.

    Raises:
        EvaluationError: the state has no evaluation report (a bug upstream).
    """
    state = event.state
    if state.evaluation is None:
        raise EvaluationError("Judge needs the evaluation report in the state")
    spec = TrainingSpec.model_validate(state.spec)
    return judge(
        state.evaluation.metrics,
        spec.evaluation.thresholds,
        attempt=state.attempt,
        max_attempts=spec.retraining.max_attempts,
        report=state.evaluation,
        algorithm=spec.algorithm,
        hyperparameters=spec.hyperparameters,
        task=spec.task,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the Verdict as JSON (``verdict``: pass, retry or fail)."""
    return step(event, decide)
