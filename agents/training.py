"""Agent of the StartTraining and DescribeTraining states (result: ``$.training``)."""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.jobs.requests import job_name
from mcp_server.core.jobs.tuning import as_training_job
from mcp_server.core.models import TrainingJob, TuningJob
from mcp_server.core.workflow.state import AgentEvent, WorkflowState
from mcp_server.errors import TrainingJobError


def lineage_tags(state: WorkflowState) -> dict[str, str]:
    """Tags that tie a job to its issue, run, attempt, spec and data."""
    return {
        "issue": str(state.issue.number),
        "execution": state.run_id,
        "attempt": str(state.attempt),
        "spec_hash": state.spec_hash,
        "data_version": state.dataset.data_version if state.dataset else "",
    }


def start(event: AgentEvent) -> TrainingJob:
    """Start the training job for this run and attempt (idempotent by job name).

    With a ``tuning`` section it starts the hyperparameter tuning job instead (see ``start_tuning``).

    Raises:
        TrainingJobError: the state has no prepared dataset, or the job cannot be started.
    """
    state = event.state
    if state.dataset is None:
        raise TrainingJobError("StartTraining needs the prepared dataset in the state")
    if state.spec.get("tuning"):
        return start_tuning(state)
    report_status(state, "training")
    arguments = {
        "job_name": job_name(state.run_id, state.attempt),
        "spec": state.spec,
        "dataset": state.dataset.model_dump(mode="json"),
        "experiment": f"issue-{state.issue.number}",
        "tags": lineage_tags(state),
    }
    return TrainingJob.model_validate(call_tool("start_training_job", arguments))


def describe(event: AgentEvent) -> TrainingJob:
    """Read the training job's status, long-polling up to ``config.describe_wait_s`` seconds.

    Raises:
        TrainingJobError: the state has no started job.
    """
    state = event.state
    if state.training is None:
        raise TrainingJobError("DescribeTraining needs a started training job in the state")
    wait_s = float(state.config.describe_wait_s)
    if state.training.tuning is not None:
        return describe_tuning(state.training.tuning.name, wait_s)
    job = call_tool("describe_training_job", {"job_name": state.training.job_name, "wait_s": wait_s})
    return TrainingJob.model_validate(job)


def start_tuning(state: WorkflowState) -> TrainingJob:
    """Start the hyperparameter tuning job for this run and attempt (idempotent by name).

    Returns:
        A TrainingJob named after the tuning job, InProgress, with ``tuning`` set: the workflow's
        polling loop then describes the search through ``describe_tuning``.
    """
    report_status(state, "tuning hyperparameters")
    arguments = {
        "tuning_job_name": job_name(state.run_id, state.attempt, kind="tune", max_length=32),
        "spec": state.spec,
        "dataset": state.dataset.model_dump(mode="json") if state.dataset else None,
        "experiment": f"issue-{state.issue.number}",
        "tags": lineage_tags(state),
    }
    tuning = TuningJob.model_validate(call_tool("start_tuning_job", arguments))
    return as_training_job(tuning, None)


def describe_tuning(name: str, wait_s: float) -> TrainingJob:
    """Read the search's status, long-polling up to ``wait_s`` seconds.

    Returns:
        While the search runs (or once it failed): a TrainingJob named after it with its status.
        Once it completed: the best trial's TrainingJob (model, tracking run, metrics) with the
        search in ``tuning``, so Evaluate, Judge and RegisterModel use the best model.
    """
    tuning = TuningJob.model_validate(
        call_tool("describe_tuning_job", {"tuning_job_name": name, "wait_s": wait_s})
    )
    best = tuning.best() if tuning.status == "Completed" else None
    job = None
    if best is not None:
        job = TrainingJob.model_validate(call_tool("describe_training_job", {"job_name": best.job_name}))
    return as_training_job(tuning, job)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``action`` ``start`` or ``describe``; the TrainingJob as JSON."""
    return step(event, start if event.get("action") == "start" else describe)
