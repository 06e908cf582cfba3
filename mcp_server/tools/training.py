"""Training tools: start_training_job, describe_training_job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Protocol, TypeVar

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.jobs.requests import training_request
from mcp_server.core.models import DatasetRef, TrainingJob
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded

JobName = Annotated[
    str,
    Field(
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        description="training job name, 1 to 63 characters [a-zA-Z0-9-]",
    ),
]


class _Job(Protocol):
    @property
    def status(self) -> str: ...


J = TypeVar("J", bound=_Job)


def long_poll(describe: Callable[[], J], wait_s: float) -> J:
    """Describe until the job (training or tuning) is not InProgress or ``wait_s`` seconds passed.

    Polls every 0.1 s for the first 5 s (most local jobs end by then), then backs off by 1.5x
    up to 5 s between polls, so a long wait costs few backend calls.
    """
    started = time.monotonic()
    deadline = started + wait_s
    delay = 0.1
    job = describe()
    while job.status == "InProgress" and time.monotonic() + delay <= deadline:
        time.sleep(delay)
        if time.monotonic() - started > 5:
            delay = min(delay * 1.5, 5.0)
        job = describe()
    return job


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the training tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def start_training_job(
        job_name: JobName,
        spec: Annotated[TrainingSpec, Field(description="the validated training spec")],
        dataset: Annotated[DatasetRef, Field(description="the dataset from prepare_dataset")],
        experiment: Annotated[
            str, Field(min_length=1, max_length=200, description="tracking experiment, e.g. issue-12")
        ],
        tags: Annotated[
            dict[str, str], Field(description="lineage tags: issue, execution, spec_hash, data_version")
        ],
    ) -> TrainingJob:
        """Start a training job for the spec's algorithm on the dataset's train/validation channels.

        The job runs the training container's program under the SageMaker training contract
        with the spec's hyperparameters, preprocessing and limits (compute.max_runtime_s seconds).
        Starting a job name that exists returns that job unchanged.

        Returns:
            TrainingJob: status (InProgress at first), tracking_run_id, log_uri.

        Raises:
            TrainingJobError: the job cannot be started.
        """
        return backends.training.start_training_job(
            training_request(spec, dataset, job_name, experiment, tags)
        )

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def describe_training_job(
        job_name: JobName,
        wait_s: Annotated[
            float,
            Field(ge=0, le=600, description="seconds to wait for the job to leave InProgress (long poll)"),
        ] = 0,
    ) -> TrainingJob:
        """Return a training job's status, failure reason, final metrics and artifact URIs.

        With ``wait_s`` > 0 the call long-polls: it returns as soon as the job is no longer
        InProgress, or after ``wait_s`` seconds with the job still InProgress (polls 0.1 s apart
        for 5 s, then backing off to 5 s).

        Returns:
            TrainingJob: status InProgress | Completed | Failed | Stopped, secondary_status,
            failure_reason, metrics (name -> last printed value), model_uri, log_uri,
            duration_s (seconds).

        Raises:
            NotFoundError: no job has that name.
        """
        return long_poll(lambda: backends.training.describe_training_job(job_name), wait_s)
