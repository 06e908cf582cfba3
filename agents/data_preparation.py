"""Agent of the PrepareData state: prepare_dataset for the run's spec."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step


def prepare(state: dict[str, Any]) -> dict[str, Any]:
    """Prepare the spec's dataset; returns the DatasetRef as a dict."""
    report_status(state, "preparing the data")
    return call_tool("prepare_dataset", {"spec": state["spec"]})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``dataset`` added."""
    return step(event, "dataset", prepare)
