"""Hyperparameter tuning tools: start_tuning_job, describe_tuning_job."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.jobs.tuning import tuning_request
from mcp_server.core.models import DatasetRef, TuningJob
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.errors import TrainingJobError
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded
from mcp_server.tools.training import long_poll

TuningJobName = Annotated[
    str,
    Field(
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$",
        description="hyperparameter tuning job name, 1 to 32 characters [a-zA-Z0-9-]",
    ),
]


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the hyperparameter tuning tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def start_tuning_job(
        tuning_job_name: TuningJobName,
        spec: Annotated[
            TrainingSpec, Field(description="the validated training spec, with a tuning section")
        ],
        dataset: Annotated[DatasetRef, Field(description="the dataset from prepare_dataset")],
        experiment: Annotated[
            str, Field(min_length=1, max_length=200, description="tracking experiment, e.g. issue-12")
        ],
        tags: Annotated[
            dict[str, str], Field(description="lineage tags: issue, execution, spec_hash, data_version")
        ],
    ) -> TuningJob:
        """Start a hyperparameter tuning job: a search with one training job per trial.

        The search over spec.tuning.search_space (strategy grid, random or bayesian) runs
        spec.tuning.max_trials trials (a grid search: its grid size), at most parallel_trials at
        a time, each a training job named {tuning_job_name}-t{n} with the spec's
        hyperparameters and the trial's values over them, scored on the objective metric
        (validation_<objective> for classification and regression, else train_<objective>). It
        runs in the background: the call returns at once. Starting a name that exists returns that job
        unchanged.

        Returns:
            TuningJob: status InProgress, objective_metric, direction, max_trials,
            parallel_trials, trials so far, tracking_run_id (the search's parent run).

        Raises:
            TrainingJobError: the spec has no tuning section, or the search cannot be started.
        """
        if spec.tuning is None:
            raise TrainingJobError(
                f"{tuning_job_name}: the spec has no tuning section; use start_training_job instead"
            )
        return backends.tuning.start_tuning_job(
            tuning_request(spec, dataset, tuning_job_name, experiment, tags)
        )

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def describe_tuning_job(
        tuning_job_name: TuningJobName,
        wait_s: Annotated[
            float,
            Field(ge=0, le=600, description="seconds to wait for the search to leave InProgress (long poll)"),
        ] = 0,
    ) -> TuningJob:
        """Return a hyperparameter tuning job's status, every trial and the best trial.

        With ``wait_s`` > 0 the call long-polls: it returns as soon as the search is no longer
        InProgress, or after ``wait_s`` seconds with it still InProgress (polls 0.1 s apart for
        5 s, then backing off to 5 s).

        Returns:
            TuningJob: status InProgress | Completed | Failed, failure_reason (every trial
            failed: the first one's reason), trials (number, job_name, hyperparameters, status,
            objective, failure_reason, duration_s in seconds, tracking_run_id), best_trial,
            started_at, ended_at, duration_s (seconds).

        Raises:
            NotFoundError: no tuning job has that name.
        """
        return long_poll(lambda: backends.tuning.describe_tuning_job(tuning_job_name), wait_s)
