"""Agent of the Judge state: pure logic, no MCP call."""

from __future__ import annotations

from typing import Any

from agents.runtime import step
from mcp_server.core.judge import Verdict, judge


def decide(state: dict[str, Any]) -> Verdict:
    """Judge the evaluation's metrics against the spec's thresholds."""
    thresholds = state["spec"].get("evaluation", {}).get("thresholds", {})
    return judge(state["evaluation"]["metrics"], thresholds, attempt=state.get("attempt", 1))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``verdict`` added (``verdict.verdict`` is pass or fail)."""
    return step(event, "verdict", decide)
