"""Agent of the StartTraining and DescribeTraining states."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs.requests import job_name
from mcp_server.core.jobs.tuning import as_training_job
from mcp_server.core.models import TrainingJob, TuningJob


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
    """Start the training job for this run and attempt (idempotent by job name).

    With a ``tuning`` section it starts the hyperparameter tuning job instead (see ``start_tuning``).
    """
    if state["spec"].get("tuning"):
        return start_tuning(state)
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
    if state["training"].get("tuning"):
        return describe_tuning(state, wait_s)
    return call_tool("describe_training_job", {"job_name": state["training"]["job_name"], "wait_s": wait_s})


def start_tuning(state: dict[str, Any]) -> dict[str, Any]:
    """Start the hyperparameter tuning job for this run and attempt (idempotent by name).

    Returns:
        A TrainingJob (as a dict) named after the tuning job, InProgress, with ``tuning`` set:
        the workflow's polling loop then describes the search through ``describe_tuning``.
    """
    report_status(state, "tuning hyperparameters")
    arguments = {
        "tuning_job_name": job_name(state["run_id"], state.get("attempt", 1), kind="tune", max_length=32),
        "spec": state["spec"],
        "dataset": state["dataset"],
        "experiment": f"issue-{state['issue']['number']}",
        "tags": lineage_tags(state),
    }
    tuning = TuningJob.model_validate(call_tool("start_tuning_job", arguments))
    return as_training_job(tuning, None).model_dump(mode="json")


def describe_tuning(state: dict[str, Any], wait_s: float) -> dict[str, Any]:
    """Read the search's status, long-polling up to ``wait_s`` seconds.

    Returns:
        While the search runs (or once it failed): a TrainingJob named after it with its status.
        Once it completed: the best trial's TrainingJob (model, tracking run, metrics) with the
        search in ``tuning``, so Evaluate, Judge and RegisterModel use the best model.
    """
    name = state["training"]["tuning"]["name"]
    tuning = TuningJob.model_validate(
        call_tool("describe_tuning_job", {"tuning_job_name": name, "wait_s": wait_s})
    )
    best = tuning.best() if tuning.status == "Completed" else None
    job = None
    if best is not None:
        job = TrainingJob.model_validate(call_tool("describe_training_job", {"job_name": best.job_name}))
    return as_training_job(tuning, job).model_dump(mode="json")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``action`` ``start`` or ``describe``; the state with ``training`` set."""
    work = start if event.get("action") == "start" else describe
    return step(event, "training", work)
