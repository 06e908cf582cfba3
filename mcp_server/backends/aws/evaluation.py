"""Evaluation as a SageMaker processing job running ``training_containers/evaluation``.

The job is the local evaluation's program under the same SageMaker Processing contract:

- inputs under ``/opt/ml/processing/input/``: ``model`` (the training job's ``model.tar.gz``,
  which the program unpacks), ``train``, ``validation``, ``test`` (the dataset's split prefixes)
  and ``config`` (``evaluation.json``, written first to
  ``s3://{bucket}/evaluations/{evaluation_id}/input/config/``);
- its output folder ``/opt/ml/processing/output/`` is uploaded when it ends to
  ``s3://{bucket}/evaluations/{evaluation_id}/output/``: ``report.json``, ``plots/``,
  ``baseline/baseline.json``, or ``failure``.

``evaluate_model`` starts the job (or finds it: the job name is the evaluation id) and waits for
its end, polling ``DescribeProcessingJob``. A report already on S3 is returned without starting
anything, so a Lambda that timed out while waiting is retried by the workflow and picks the
same job up. MLflow tracking does not exist on AWS: the metrics travel in the report and the
model package's metadata.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_server.backends.aws.clients import aws_client, translated
from mcp_server.backends.aws.processing import (
    WAIT_BUDGET_S,
    failure_reason,
    log_link,
    start_processing_job,
    wait_for_processing_job,
)
from mcp_server.backends.aws.processing import processing_job_definition as job_definition
from mcp_server.backends.aws.s3 import object_exists, read_object
from mcp_server.backends.base import EvaluationBackend
from mcp_server.core.jobs.evaluation import check_evaluation_request, program_config, report_fields
from mcp_server.core.models import EvaluationReport, EvaluationRequest
from mcp_server.errors import EvaluationError
from mcp_server.settings import Settings

#: The image family of the evaluation program (``MLOPS_TRAINING_IMAGE_EVALUATION``).
IMAGE_FAMILY = "evaluation"
ENTRYPOINT = ["python3", "-m", "training_containers.evaluation.evaluate"]


class SageMakerEvaluationBackend(EvaluationBackend):
    """Runs evaluations as SageMaker processing jobs and reads their reports from S3.

    Args:
        settings: ``s3_bucket``, ``sagemaker_role_arn``, ``training_images["evaluation"]``,
            ``aws_region`` and ``aws_endpoint_url``.
        sagemaker_client: a boto3 SageMaker client to use instead of building one.
        s3_client: a boto3 S3 client to use instead of building one.
        poll_s: seconds between two looks at the job.
        wait_budget_s: seconds one call waits for the job before answering TransientError (the
            workflow's retry waits on; ``processing.WAIT_BUDGET_S``).
        instance_type: the processing instance (``ml.m5.xlarge``: 4 vCPUs, 16 GiB).
    """

    def __init__(
        self,
        settings: Settings,
        sagemaker_client: Any = None,
        s3_client: Any = None,
        poll_s: float = 10.0,
        wait_budget_s: float = WAIT_BUDGET_S,
        instance_type: str = "ml.m5.xlarge",
    ) -> None:
        self._settings = settings
        self._sagemaker = sagemaker_client or aws_client(settings, "sagemaker")
        self._s3 = s3_client or aws_client(settings, "s3")
        self._poll_s = poll_s
        self._wait_budget_s = wait_budget_s
        self._instance_type = instance_type

    def evaluate_model(self, request: EvaluationRequest) -> EvaluationReport:
        """Run the evaluation processing job (or find its report) and return the report.

        Args:
            request: ``model_uri`` is the training job's ``s3://…/model.tar.gz``; the dataset's
                splits are ``s3://`` prefixes holding ``data.parquet``; ``max_runtime_s`` is the
                job's time limit (seconds).

        Returns:
            The report, its plot, baseline and report URIs on S3 and ``log_uri`` the job's
            CloudWatch log stream in the console.

        Raises:
            EvaluationError: a request the program cannot run (task, metrics, id), no bucket,
                role or image configured, an input that is not on S3, SageMaker refused the job,
                or the job failed (the program's failure file, else SageMaker's FailureReason).
            TransientError: SageMaker or S3 throttled or was unreachable, or the job did not
                end within its time limit plus 15 minutes of provisioning; retry to wait on.
        """
        check_evaluation_request(request)
        prefix = self._prefix(request.evaluation_id)
        with translated(f"evaluate {request.evaluation_id}", "SageMaker", EvaluationError):
            if not object_exists(self._s3, f"{prefix}/output/report.json"):
                self._start(request, prefix)
                self._wait(request, prefix)
            return self._report(request.evaluation_id, prefix)

    def _prefix(self, evaluation_id: str) -> str:
        if not self._settings.s3_bucket:
            raise EvaluationError("AWS mode evaluates on SageMaker: set MLOPS_BUCKET to the stack's bucket")
        return f"s3://{self._settings.s3_bucket}/evaluations/{evaluation_id}"

    def _start(self, request: EvaluationRequest, prefix: str) -> None:
        """Write the configuration and create the job unless it exists."""
        definition = processing_job_definition(request, prefix, self._settings, self._instance_type)
        config_uri = f"{prefix}/input/config/evaluation.json"
        start_processing_job(self._sagemaker, self._s3, definition, config_uri, program_config(request))

    def _wait(self, request: EvaluationRequest, prefix: str) -> None:
        """Poll the job until it ends; raise its failure."""
        name = request.evaluation_id
        reason = wait_for_processing_job(
            self._sagemaker, self._s3, name, prefix, request.max_runtime_s, self._poll_s, self._wait_budget_s
        )
        if reason is not None:
            log = log_link(self._settings.aws_region, name)
            raise EvaluationError(f"evaluation {name} failed: {reason} (log: {log})")

    def _report(self, evaluation_id: str, prefix: str) -> EvaluationReport:
        """Build the EvaluationReport from ``report.json`` on S3, with ``s3://`` URIs."""
        output = f"{prefix}/output"
        if not object_exists(self._s3, f"{output}/report.json"):  # the program exited 0 without a report
            job = {"ProcessingJobStatus": "Completed", "ExitMessage": "the job wrote no report.json"}
            reason = failure_reason(self._s3, job, prefix)
            log = log_link(self._settings.aws_region, evaluation_id)
            raise EvaluationError(f"evaluation {evaluation_id} failed: {reason} (log: {log})")
        try:
            body = json.loads(read_object(self._s3, f"{output}/report.json"))
            return EvaluationReport(
                evaluation_id=evaluation_id,
                **report_fields(body),
                plots={name: f"{output}/{relative}" for name, relative in body.get("plots", {}).items()},
                baseline_uri=f"{output}/{body['baseline']}" if body.get("baseline") else None,
                report_uri=f"{output}/report.json",
                log_uri=log_link(self._settings.aws_region, evaluation_id),
                duration_s=float(body.get("duration_s") or 0.0),
            )
        except (ValueError, KeyError, TypeError) as err:  # pydantic's ValidationError is a ValueError
            raise EvaluationError(f"cannot read the evaluation report {output}/report.json: {err}") from err


def processing_job_definition(
    request: EvaluationRequest, prefix: str, settings: Settings, instance_type: str = "ml.m5.xlarge"
) -> dict[str, Any]:
    """Return the ``CreateProcessingJob`` arguments of an evaluation.

    Raises:
        EvaluationError: no role or evaluation image is configured, or an input is not on S3.
    """
    image = settings.training_images.get(IMAGE_FAMILY)
    if not image or not settings.sagemaker_role_arn:
        raise EvaluationError(
            "AWS mode evaluates in a SageMaker processing job: set MLOPS_TRAINING_IMAGE_EVALUATION to the "
            "evaluation image and MLOPS_SAGEMAKER_ROLE_ARN to the stack's SageMaker role"
        )
    sources = {"model": request.model_uri, "config": f"{prefix}/input/config/"}
    if request.task != "control":
        sources.update(request.dataset.splits)
    try:
        return job_definition(
            request.evaluation_id,
            image,
            settings.sagemaker_role_arn,
            ENTRYPOINT,
            sources,
            f"{prefix}/output",
            request.max_runtime_s,
            instance_type,
            {"evaluation": request.evaluation_id},
        )
    except ValueError as err:
        raise EvaluationError(f"the evaluation's {err}") from err
