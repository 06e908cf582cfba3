"""Agent of the PrepareData state: prepare_dataset for the run's spec (result: ``$.dataset``)."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.models import DatasetRef
from mcp_server.core.workflow.state import AgentEvent


def prepare(event: AgentEvent) -> DatasetRef:
    """Prepare the spec's dataset (or check the environment of a control task)."""
    report_status(event.state, "preparing the data")
    return DatasetRef.model_validate(call_tool("prepare_dataset", {"spec": event.state.spec}))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the DatasetRef as JSON."""
    return step(event, prepare)
