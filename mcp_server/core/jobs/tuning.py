"""Requests, trials and workflow views of hyperparameter tuning jobs. Pure: no I/O.

A hyperparameter tuning job runs one training job per trial: the spec's training request with
the hyperparameters the search chose laid over the static ones, named ``{tuning_job}-t{n}``.
For the workflow, a finished search is seen as its best trial's ``TrainingJob`` carrying the
search in ``tuning``, so the evaluation, the judge and the registration use the best model
unchanged (``as_training_job``).
"""

from __future__ import annotations

from typing import Any

from mcp_server.core.jobs.requests import training_request
from mcp_server.core.models import (
    DatasetRef,
    TrainingJob,
    TrainingJobRequest,
    TuningJob,
    TuningJobRequest,
    TuningTrial,
)
from mcp_server.core.spec import catalog
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.core.spec.tuning import objective_metric

#: The tag that makes a tracking run the child of another (MLflow's ``mlflow.parentRunId``).
PARENT_RUN_TAG = "mlflow.parentRunId"
#: Longest failure reason kept per trial (the trial list travels in the workflow state); the
#: whole reason stays with the trial's training job (``describe_training_job``).
TRIAL_REASON_MAX_CHARS = 200


def tuning_request(
    spec: TrainingSpec, dataset: DatasetRef, name: str, experiment: str, tags: dict[str, str]
) -> TuningJobRequest:
    """Build the hyperparameter tuning job request for ``spec`` on the prepared ``dataset``.

    Args:
        spec: the validated spec; its ``tuning`` section is the search.
        dataset: the prepared dataset (its train and validation splits become channels).
        name: the tuning job name, at most 32 characters (``jobs.job_name(..., max_length=32)``).
        experiment: the tracking experiment of the search and its trials.
        tags: lineage tags put on the search and on every trial.

    Returns:
        The request; its ``training`` is the template of every trial.

    Raises:
        ValueError: the spec has no ``tuning`` section.
    """
    if spec.tuning is None:
        raise ValueError(f"{name}: the spec has no tuning section; start a training job instead")
    return TuningJobRequest(
        tuning_job_name=name,
        tuning=spec.tuning,
        training=training_request(spec, dataset, name, experiment, tags),
    )


def objective_of(request: TuningJobRequest) -> tuple[str, str]:
    """Return the search's objective metric line and direction (``maximize`` or ``minimize``).

    The direction is the spec's, else the metric's natural one (``catalog.metric_direction``).
    """
    has_validation = "validation" in request.training.channels
    metric = objective_metric(request.training.task, request.tuning.objective, has_validation)
    return metric, request.tuning.direction or catalog.metric_direction(request.tuning.objective)


def trial_job_name(tuning_job_name: str, number: int) -> str:
    """Return the training job name of trial ``number``: ``{tuning_job_name}-t{number}`` (<= 37 chars)."""
    return f"{tuning_job_name}-t{number}"


def trial_request(
    request: TuningJobRequest, number: int, hyperparameters: dict[str, Any], parent_run_id: str | None
) -> TrainingJobRequest:
    """Return the training job request of one trial.

    Args:
        request: the tuning job request.
        number: the trial number, 1-based.
        hyperparameters: the values the search chose; they override the static ones.
        parent_run_id: the search's tracking run; the trial's run becomes its child.

    Returns:
        The template request with the trial's name, hyperparameters and tags (``tuning_job``,
        ``trial`` and, with a parent, ``mlflow.parentRunId``).
    """
    template = request.training
    tags = {**template.tags, "tuning_job": request.tuning_job_name, "trial": str(number)}
    if parent_run_id:
        tags[PARENT_RUN_TAG] = parent_run_id
    return template.model_copy(
        update={
            "job_name": trial_job_name(request.tuning_job_name, number),
            "hyperparameters": {**template.hyperparameters, **hyperparameters},
            "tags": tags,
        }
    )


def best_trial(trials: list[TuningTrial], direction: str) -> TuningTrial | None:
    """Return the completed trial with the best objective (the lowest number on a tie), or None."""
    scored = [t for t in trials if t.status == "Completed" and t.objective is not None]
    if not scored:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    return min(scored, key=lambda t: (sign * float(t.objective or 0.0), t.number))


def every_trial_failed_reason(trials: list[TuningTrial]) -> str:
    """Return why a search whose every trial failed has failed: the first failed trial's reason."""
    first = next((t for t in trials if t.status != "Completed" and t.failure_reason), None)
    if first is None:
        return "no trial completed"
    where = f"trial {first.number}, job {first.job_name}"
    return f"every trial failed; the first failure ({where}): {first.failure_reason}"


def short_reason(reason: str | None) -> str | None:
    """Shorten a trial's failure reason to ``TRIAL_REASON_MAX_CHARS`` characters."""
    if reason is None or len(reason) <= TRIAL_REASON_MAX_CHARS:
        return reason
    return reason[: TRIAL_REASON_MAX_CHARS - 1] + "…"


def as_training_job(tuning: TuningJob, best: TrainingJob | None) -> TrainingJob:
    """Return what the workflow's ``training`` state value is for a hyperparameter tuning job.

    Args:
        tuning: the search as ``describe_tuning_job`` reports it.
        best: the best trial's training job, once the search completed (None otherwise).

    Returns:
        Completed: ``best`` with ``tuning`` set, so evaluation and registration use the best
        model. InProgress or Failed: a job named after the search with its status, failure
        reason and times, and ``tuning`` set.
    """
    if tuning.status == "Completed" and best is not None:
        return best.model_copy(update={"tuning": tuning})
    status = "Failed" if tuning.status == "Completed" else tuning.status
    ended = sum(t.status != "InProgress" for t in tuning.trials)
    reason = tuning.failure_reason
    if tuning.status == "Completed":
        reason = (
            f"the hyperparameter tuning job {tuning.name} completed but its best trial cannot be described"
        )
    return TrainingJob(
        job_name=tuning.name,
        status=status,
        secondary_status=f"Tuning: {ended} of {tuning.max_trials} trials ended",
        failure_reason=reason,
        algorithm=tuning.algorithm,
        started_at=tuning.started_at,
        ended_at=tuning.ended_at,
        duration_s=tuning.duration_s,
        tracking_run_id=tuning.tracking_run_id,
        tuning=tuning,
    )


def tuned_hyperparameters(static: dict[str, Any], training: dict[str, Any] | TrainingJob) -> dict[str, Any]:
    """Return the hyperparameters the model was trained with: the best trial's over the static ones.

    Args:
        static: the spec's hyperparameters.
        training: the workflow's ``training`` value (a dict or a ``TrainingJob``).

    Returns:
        ``static`` unchanged when the training was not a search.
    """
    job = training if isinstance(training, TrainingJob) else TrainingJob.model_validate(training)
    best = job.tuning.best() if job.tuning else None
    return {**static, **best.hyperparameters} if best else dict(static)
