"""Agent of the StartTraining and DescribeTraining states."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs import job_name


def lineage_tags(state: dict[str, Any]) -> dict[str, str]:
    """Tags that tie a job to its issue, run, attempt, spec and data."""
    return {
        "issue": str(state["issue"]["number"]),
        "execution": str(state["run_id"]),
        "attempt": str(state.get("attempt", 1)),
        "spec_hash": str(state["spec_hash"]),
        "data_version": str(state["dataset"]["data_version"]),
    }


def start(state: dict[str, Any]) -> dict[str, Any]:
    """Start the training job for this run and attempt (idempotent by job name)."""
    report_status(state, "training")
    arguments = {
        "job_name": job_name(state["run_id"], state.get("attempt", 1)),
        "spec": state["spec"],
        "dataset": state["dataset"],
        "experiment": f"issue-{state['issue']['number']}",
        "tags": lineage_tags(state),
    }
    return call_tool("start_training_job", arguments)


def describe(state: dict[str, Any]) -> dict[str, Any]:
    """Read the training job's status, long-polling up to ``config.describe_wait_s`` seconds."""
    wait_s = float((state.get("config") or {}).get("describe_wait_s", 0))
    return call_tool("describe_training_job", {"job_name": state["training"]["job_name"], "wait_s": wait_s})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``action`` ``start`` or ``describe``; the state with ``training`` set."""
    work = start if event.get("action") == "start" else describe
    return step(event, "training", work)
