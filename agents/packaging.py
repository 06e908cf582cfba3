"""Agent of the RegisterModel state: register_model with lineage."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs.tuning import tuned_hyperparameters
from mcp_server.core.spec.schema import TrainingSpec


def register(state: dict[str, Any]) -> dict[str, Any]:
    """Register the trained model; returns the RegisteredModel as a dict."""
    spec = TrainingSpec.model_validate(state["spec"])
    dataset, training, issue = state["dataset"], state["training"], state["issue"]
    report_status(state, "registering the model")
    return call_tool(
        "register_model",
        {
            "request": {
                "model_name": spec.registered_model_name,
                "model_uri": training["model_uri"],
                "tracking_run_id": training.get("tracking_run_id"),
                "metrics": state["evaluation"]["metrics"],
                "lineage": {
                    "issue_number": issue["number"],
                    "issue_url": issue.get("url", ""),
                    "execution_name": state["run_id"],
                    "job_name": training["job_name"],
                    "spec_hash": state["spec_hash"],
                    "data_version": dataset["data_version"],
                    "dataset_id": dataset["dataset_id"],
                },
                "model_type": spec.model_type,
                "algorithm": spec.algorithm,
                "feature_names": dataset["feature_names"],
                "hyperparameters": tuned_hyperparameters(spec.hyperparameters, training),
                "preprocessing": spec.preprocessing.model_dump(mode="json"),
                "baseline_uri": state["evaluation"].get("baseline_uri"),
            }
        },
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``model`` added."""
    return step(event, "model", register)
