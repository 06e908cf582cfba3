"""Agent of the Evaluate state: evaluate_model, a processing job on the held-out test split."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs.requests import job_name
from mcp_server.core.models import EvaluationReport
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.core.workflow.state import AgentEvent
from mcp_server.errors import EvaluationError


def evaluate(event: AgentEvent) -> EvaluationReport:
    """Evaluate the trained model; the result goes to ``$.evaluation``.

    Raises:
        EvaluationError: the state has no trained model (a bug upstream), or the job failed.
    """
    state = event.state
    spec = TrainingSpec.model_validate(state.spec)
    training, dataset = state.training, state.dataset
    if training is None or training.model_uri is None or dataset is None:
        raise EvaluationError("Evaluate needs a completed training job and a prepared dataset in the state")
    report_status(state, "evaluating")
    fairness = spec.evaluation.fairness
    request = {
        "evaluation_id": job_name(state.run_id, state.attempt, kind="eval"),
        "task": spec.task,
        "algorithm": spec.algorithm,
        "model_uri": training.model_uri,
        "dataset": dataset.model_dump(mode="json"),
        "metrics": spec.metrics,
        "tracking_run_id": training.tracking_run_id,
        "explainability": spec.evaluation.explainability,
        "fairness": fairness.model_dump(mode="json") if fairness else None,
        "environment": spec.environment.model_dump(mode="json") if spec.environment else None,
        "max_runtime_s": spec.compute.max_runtime_s,
    }
    return EvaluationReport.model_validate(call_tool("evaluate_model", {"request": request}))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the EvaluationReport as JSON."""
    return step(event, evaluate)
