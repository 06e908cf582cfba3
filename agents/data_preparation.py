"""Agent of the PrepareData state: prepare_dataset for the run's spec (result: ``$.dataset``)."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.models import DatasetRef
from mcp_server.core.workflow.state import AgentEvent


def prepare(event: AgentEvent) -> DatasetRef:
    """Prepare the spec's dataset (or check the environment of a control task).

    A retrain whose trigger carries feedback (``retraining.feedback``) adds those labelled
    captured rows to the data.
    """
    report_status(event.state, "preparing the data")
    arguments: dict[str, Any] = {"spec": event.state.spec}
    trigger = event.state.trigger
    if trigger is not None and trigger.feedback_uri:
        arguments["feedback_uri"] = trigger.feedback_uri
    return DatasetRef.model_validate(call_tool("prepare_dataset", arguments))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the DatasetRef as JSON."""
    return step(event, prepare)
