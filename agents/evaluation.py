"""Agent of the Evaluate state: evaluate_model, a processing job on the held-out test split."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs.requests import job_name
from mcp_server.core.spec.schema import TrainingSpec


def evaluate(state: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the trained model; returns the EvaluationReport as a dict."""
    spec = TrainingSpec.model_validate(state["spec"])
    training = state["training"]
    report_status(state, "evaluating")
    fairness = spec.evaluation.fairness
    request = {
        "evaluation_id": job_name(state["run_id"], state.get("attempt", 1), kind="eval"),
        "task": spec.task,
        "algorithm": spec.algorithm,
        "model_uri": training["model_uri"],
        "dataset": state["dataset"],
        "metrics": spec.metrics,
        "tracking_run_id": training.get("tracking_run_id"),
        "explainability": spec.evaluation.explainability,
        "fairness": fairness.model_dump(mode="json") if fairness else None,
        "environment": spec.environment.model_dump(mode="json") if spec.environment else None,
        "max_runtime_s": spec.compute.max_runtime_s,
    }
    return call_tool("evaluate_model", {"request": request})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``evaluation`` added."""
    return step(event, "evaluation", evaluate)
