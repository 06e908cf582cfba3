"""SageMaker hyperparameter tuning jobs through boto3's ``sagemaker`` client.

The ``tuning:`` section maps onto ``CreateHyperParameterTuningJob``:

- ``strategy`` grid | random | bayesian -> ``Strategy`` Grid | Random | Bayesian;
- ``objective`` -> ``HyperParameterTuningJobObjective``: ``Maximize`` or ``Minimize`` on the
  trial's ``validation_<metric>`` (``train_<metric>`` for tasks other than classification and
  regression), a metric the training backend's metric definitions capture from the log;
- ``max_trials`` / ``parallel_trials`` -> ``ResourceLimits`` ``MaxNumberOfTrainingJobs`` /
  ``MaxParallelTrainingJobs`` (grid search: the grid size, as SageMaker requires);
- ``search_space`` -> ``ParameterRanges``: ``int`` -> ``IntegerParameterRanges``, ``float`` ->
  ``ContinuousParameterRanges`` (``ScalingType`` ``Logarithmic`` with ``log: true``, else
  ``Linear``), ``categorical`` -> ``CategoricalParameterRanges`` whose values are JSON strings,
  decoded by the training program like every hyperparameter;
- the training job definition is the training backend's ``CreateTrainingJob`` arguments
  (``aws.training.training_job_definition``) with the searched names removed from the static
  hyperparameters. Its checkpoint configuration is left out: every trial shares the definition,
  so they would share one checkpoint prefix; an interrupted spot trial restarts from scratch.

``describe_tuning_job`` reads ``DescribeHyperParameterTuningJob`` and every page of
``ListTrainingJobsForHyperParameterTuningJob`` (one entry per trial, with the tuned
hyperparameters and the final objective value).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mcp_server.backends.aws.clients import aws_client
from mcp_server.backends.aws.training import _code, _decode, _iso, _translate, training_job_definition
from mcp_server.backends.base import TuningBackend
from mcp_server.core.jobs.tuning import best_trial, every_trial_failed_reason, objective_of, short_reason
from mcp_server.core.models import TuningJob, TuningJobRequest, TuningTrial
from mcp_server.core.spec.tuning import trial_count
from mcp_server.errors import NotFoundError, TrainingJobError, TransientError
from mcp_server.settings import Settings

_STRATEGIES = {"grid": "Grid", "random": "Random", "bayesian": "Bayesian"}
#: SageMaker's tuning job states -> ours (Stopping is still running; Stopped counts as Failed).
_STATUS = {"InProgress": "InProgress", "Stopping": "InProgress", "Completed": "Completed"}
_TRIAL_STATUS = {
    "InProgress": "InProgress",
    "Stopping": "InProgress",
    "Completed": "Completed",
    "Stopped": "Stopped",
}


class SageMakerTuningBackend(TuningBackend):
    """Runs hyperparameter tuning jobs on SageMaker."""

    def __init__(self, settings: Settings, sagemaker_client: Any = None) -> None:
        """Use ``sagemaker_client``, or build one for ``settings.aws_region`` / endpoint URL."""
        self._settings = settings
        self._client = sagemaker_client or aws_client(settings, "sagemaker")

    def start_tuning_job(self, request: TuningJobRequest) -> TuningJob:
        """Create the SageMaker hyperparameter tuning job; an existing name returns that job.

        Args:
            request: the search and the template training job (``s3://`` channels).

        Returns:
            The tuning job as ``describe_tuning_job`` reports it.

        Raises:
            TrainingJobError: the definition cannot be built (see
                ``tuning_job_definition``) or SageMaker refused it.
            TransientError: SageMaker throttled or was unavailable; retry.
        """
        definition = tuning_job_definition(request, self._settings)
        name = request.tuning_job_name
        try:
            return self.describe_tuning_job(name)
        except NotFoundError:
            pass
        try:
            self._client.create_hyper_parameter_tuning_job(**definition)
        except ClientError as err:
            if _code(err) != "ResourceInUse":  # created meanwhile by another caller: describe it
                raise _translate(err, f"cannot create hyperparameter tuning job {name}") from err
        except BotoCoreError as err:
            raise TransientError(f"cannot reach SageMaker to create {name}: {err}") from err
        return self.describe_tuning_job(name)

    def describe_tuning_job(self, name: str) -> TuningJob:
        """Return the search's status, every trial and the best one.

        Raises:
            NotFoundError: no tuning job has that name.
            TransientError: SageMaker throttled or was unavailable; retry.
            TrainingJobError: any other SageMaker error.
        """
        try:
            described = self._client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
            pages = self._client.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
                HyperParameterTuningJobName=name, PaginationConfig={"PageSize": 100}
            )
            summaries = [s for page in pages for s in page.get("TrainingJobSummaries", [])]
        except ClientError as err:
            message = str(err.response.get("Error", {}).get("Message", ""))
            if _code(err) == "ResourceNotFound" or "could not find" in message.lower():
                raise NotFoundError(
                    f"no SageMaker hyperparameter tuning job named {name!r}: {message}"
                ) from err
            raise _translate(err, f"cannot describe hyperparameter tuning job {name}") from err
        except BotoCoreError as err:
            raise TransientError(f"cannot reach SageMaker to describe {name}: {err}") from err
        return to_tuning_job(described, summaries)


def tuning_job_definition(request: TuningJobRequest, settings: Settings) -> dict[str, Any]:
    """Return the ``CreateHyperParameterTuningJob`` arguments for a request.

    Raises:
        TrainingJobError: as ``aws.training.training_job_definition`` (no image, bucket or role;
            a channel that is not ``s3://``; a value over 2,500 characters), or the objective
            metric is not among the metric definitions.
    """
    training = training_job_definition(request.training, settings)
    tuning = request.tuning
    metric, direction = objective_of(request)
    captured = {d["Name"] for d in training["AlgorithmSpecification"]["MetricDefinitions"]}
    if metric not in captured:
        raise TrainingJobError(
            f"the objective {metric} is not a metric the {request.training.task} training jobs report; "
            f"they report {', '.join(sorted(captured))}"
        )
    static = {k: v for k, v in training["HyperParameters"].items() if k not in tuning.search_space}
    keep = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig")
    definition: dict[str, Any] = {key: training[key] for key in keep}
    definition.update(
        StaticHyperParameters=static,
        StoppingCondition=training["StoppingCondition"],
        EnableManagedSpotTraining=training["EnableManagedSpotTraining"],
    )
    trials = trial_count(tuning.strategy, tuning.max_trials, tuning.search_space)
    limits = {
        "MaxNumberOfTrainingJobs": trials,
        "MaxParallelTrainingJobs": min(tuning.parallel_trials, trials),
    }
    tags = {**request.training.tags, "tuning_job": request.tuning_job_name}
    return {
        "HyperParameterTuningJobName": request.tuning_job_name,
        "HyperParameterTuningJobConfig": {
            "Strategy": _STRATEGIES[tuning.strategy],
            "HyperParameterTuningJobObjective": {"Type": direction.capitalize(), "MetricName": metric},
            "ResourceLimits": limits,
            "ParameterRanges": parameter_ranges(request),
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": request.training.seed,
        },
        "TrainingJobDefinition": definition,
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def parameter_ranges(request: TuningJobRequest) -> dict[str, list[dict[str, Any]]]:
    """Return the ``ParameterRanges`` of the search space (every value a string, as SageMaker takes them)."""
    ranges: dict[str, list[dict[str, Any]]] = {
        "IntegerParameterRanges": [],
        "ContinuousParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for name, parameter in request.tuning.search_space.items():
        if parameter.type == "categorical":
            values = [json.dumps(v) for v in parameter.values or []]
            ranges["CategoricalParameterRanges"].append({"Name": name, "Values": values})
            continue
        low, high = parameter.low or 0.0, parameter.high or 0.0
        key = "IntegerParameterRanges" if parameter.type == "int" else "ContinuousParameterRanges"
        shown = (str(int(low)), str(int(high))) if parameter.type == "int" else (repr(low), repr(high))
        ranges[key].append(
            {
                "Name": name,
                "MinValue": shown[0],
                "MaxValue": shown[1],
                "ScalingType": "Logarithmic" if parameter.log else "Linear",
            }
        )
    return ranges


def to_tuning_job(described: dict[str, Any], summaries: list[dict[str, Any]]) -> TuningJob:
    """Map ``DescribeHyperParameterTuningJob`` and the trial summaries onto ``TuningJob``.

    Trials are numbered by creation time. A search SageMaker reports Completed with no completed
    trial, or Failed or Stopped, is Failed; with every trial failed, the reason is the first's.
    """
    config = described["HyperParameterTuningJobConfig"]
    objective = config.get("HyperParameterTuningJobObjective") or {}
    direction = "minimize" if objective.get("Type") == "Minimize" else "maximize"
    ordered = sorted(summaries, key=lambda s: (s.get("CreationTime") or 0, s["TrainingJobName"]))
    trials = [_trial(number, summary) for number, summary in enumerate(ordered, start=1)]
    best_name = (described.get("BestTrainingJob") or {}).get("TrainingJobName")
    best = next((t for t in trials if t.job_name == best_name and t.status == "Completed"), None)
    best = best or best_trial(trials, direction)
    status = _STATUS.get(described["HyperParameterTuningJobStatus"], "Failed")
    reason = described.get("FailureReason") or None
    if status == "Completed" and best is None:
        status = "Failed"
        reason = every_trial_failed_reason(trials)
    static = (described.get("TrainingJobDefinition") or {}).get("StaticHyperParameters") or {}
    limits = config.get("ResourceLimits") or {}
    started, ended = described.get("CreationTime"), described.get("HyperParameterTuningEndTime")
    strategy = {v: k for k, v in _STRATEGIES.items()}.get(config.get("Strategy", ""), "bayesian")
    return TuningJob(
        name=described["HyperParameterTuningJobName"],
        status=status,  # type: ignore[arg-type]
        algorithm=str(_decode(static.get("_algorithm", '"unknown"'))),
        strategy=strategy,  # type: ignore[arg-type]
        objective_metric=str(objective.get("MetricName", "")),
        direction=direction,
        max_trials=int(limits.get("MaxNumberOfTrainingJobs") or len(trials)),
        parallel_trials=int(limits.get("MaxParallelTrainingJobs") or 1),
        trials=trials,
        best_trial=best.number if best else None,
        failure_reason=reason,
        started_at=_iso(started),
        ended_at=_iso(ended),
        duration_s=(ended - started).total_seconds() if started and ended else None,
    )


def _trial(number: int, summary: dict[str, Any]) -> TuningTrial:
    final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    started, ended = summary.get("TrainingStartTime"), summary.get("TrainingEndTime")
    status = _TRIAL_STATUS.get(summary["TrainingJobStatus"], "Failed")
    value = final.get("Value")
    if status == "Completed" and value is None:
        status = "Failed"  # SageMaker's ObjectiveStatus Failed: the job printed no objective
    return TuningTrial(
        number=number,
        job_name=summary["TrainingJobName"],
        hyperparameters={k: _decode(v) for k, v in (summary.get("TunedHyperParameters") or {}).items()},
        status=status,  # type: ignore[arg-type]
        objective=float(value) if value is not None and status == "Completed" else None,
        failure_reason=short_reason(summary.get("FailureReason"))
        or ("the training job reported no objective metric" if status == "Failed" else None),
        duration_s=(ended - started).total_seconds() if started and ended else None,
    )
