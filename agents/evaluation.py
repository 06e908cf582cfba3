"""Agent of the Evaluate state: evaluate_model on the held-out test split."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, step
from mcp_server.core.spec import TrainingSpec


def evaluate(state: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the trained model; returns the EvaluationReport as a dict."""
    spec = TrainingSpec.model_validate(state["spec"])
    training = state["training"]
    return call_tool(
        "evaluate_model",
        {
            "request": {
                "evaluation_id": f"{training['job_name']}-eval",
                "task": spec.task,
                "model_uri": training["model_uri"],
                "dataset": state["dataset"],
                "metrics": spec.metrics,
                "tracking_run_id": training.get("tracking_run_id"),
            }
        },
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``evaluation`` added."""
    return step(event, "evaluation", evaluate)
