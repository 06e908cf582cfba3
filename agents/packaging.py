"""Agent of the RegisterModel state: register_model with lineage (result: ``$.model``)."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs.tuning import tuned_hyperparameters
from mcp_server.core.models import RegisteredModel
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.core.workflow.state import AgentEvent
from mcp_server.errors import RegistryError


def register(event: AgentEvent) -> RegisteredModel:
    """Register the trained model with its lineage, semantic version and alias.

    Raises:
        RegistryError: the state has no trained model or evaluation (a bug upstream), or the
            registry refused it.
    """
    state = event.state
    dataset, training, evaluation = state.dataset, state.training, state.evaluation
    if dataset is None or training is None or training.model_uri is None or evaluation is None:
        raise RegistryError("RegisterModel needs the dataset, a completed training job and its evaluation")
    spec = TrainingSpec.model_validate(state.spec)
    report_status(state, "registering the model")
    request = {
        "model_name": spec.registered_model_name,
        "model_uri": training.model_uri,
        "tracking_run_id": training.tracking_run_id,
        "metrics": evaluation.metrics,
        "lineage": {
            "issue_number": state.issue.number,
            "issue_url": state.issue.url,
            "execution_name": state.run_id,
            "job_name": training.job_name,
            "spec_hash": state.spec_hash,
            "data_version": dataset.data_version,
            "dataset_id": dataset.dataset_id,
        },
        "model_type": spec.model_type,
        "algorithm": spec.algorithm,
        "feature_names": dataset.feature_names,
        "hyperparameters": tuned_hyperparameters(spec.hyperparameters, training),
        "preprocessing": spec.preprocessing.model_dump(mode="json"),
        "baseline_uri": evaluation.baseline_uri,
    }
    return RegisteredModel.model_validate(call_tool("register_model", {"request": request}))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the RegisteredModel as JSON."""
    return step(event, register)
