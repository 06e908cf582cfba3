"""Monitoring on AWS: SageMaker processing jobs, records on S3, schedules in EventBridge Scheduler.

Under ``s3://{bucket}/``:

- ``capture/{endpoint}/``: the endpoint's data capture (SageMaker writes it);
- ``ground_truth/{endpoint}/yyyy/mm/dd/hh/{uuid}.jsonl``: labels, in SageMaker's format;
- ``monitoring/{endpoint}/schedule.json`` and ``state.json``: the schedule and the monitor's state;
- ``monitoring/{endpoint}/jobs/{job}/``: each job's ``input/config/monitoring.json`` and
  ``output/`` (the Model Monitor files, ``report.json``, ``report.md``, ``plots/``).

The job runs ``python3 -m training_containers.monitoring.monitor`` in the monitoring image
(``MLOPS_TRAINING_IMAGE_MONITORING``) with the capture prefix, the baseline's folder and the
ground truth as inputs. SageMaker refuses an input prefix that holds no object, so an endpoint
that has captured nothing gets no job: its report (``Completed``, no rows) is written directly,
and one without labels gets no ground-truth input.

``put_monitoring_schedule`` also creates (or updates) the EventBridge Scheduler schedules that
start the monitoring state machine: ``mlops-monitor-{endpoint}`` on ``monitoring.schedule``
with input ``{"endpoint_name": ...}``, and ``mlops-retrain-{endpoint}`` on the retraining
trigger's schedule with ``{"endpoint_name": ..., "trigger": "schedule"}``. Expressions are
evaluated in UTC. It also writes a CloudWatch dashboard ``mlops-{endpoint}`` (FR-024):
invocations, 4xx/5xx, ModelLatency p50/p95/p99, CPU and memory per variant.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from mcp_server.backends.aws.clients import aws_client, error_code, translated
from mcp_server.backends.aws.processing import (
    WAIT_BUDGET_S,
    log_link,
    processing_job_definition,
    start_processing_job,
    wait_for_processing_job,
)
from mcp_server.backends.aws.s3 import object_exists, read_object, split_s3_uri, write_object
from mcp_server.backends.base import MonitoringBackend
from mcp_server.backends.local.monitoring import ground_truth_lines, job_config, report_from
from mcp_server.core.monitoring.models import (
    GroundTruthReceipt,
    MonitoringJobRequest,
    MonitoringReport,
    MonitoringSchedule,
    MonitorState,
)
from mcp_server.errors import MonitoringError, NotFoundError
from mcp_server.settings import Settings

IMAGE_FAMILY = "monitoring"
ENTRYPOINT = ["python3", "-m", "training_containers.monitoring.monitor"]


def schedule_name(kind: str, endpoint_name: str) -> str:
    """``mlops-{kind}-{endpoint}``, within Scheduler's 64 characters."""
    return f"mlops-{kind}-{endpoint_name}"[:64]


def dashboard_body(endpoint_name: str, variants: list[str], region: str) -> dict[str, Any]:
    """The CloudWatch dashboard of an endpoint (FR-024): traffic, errors, latency, CPU and memory.

    Metric names are SageMaker's (``AWS/SageMaker``: Invocations, Invocation4XXErrors,
    Invocation5XXErrors, ModelLatency in microseconds; ``/aws/sagemaker/Endpoints``:
    CPUUtilization and MemoryUtilization in percent).
    """

    def metric(namespace: str, name: str, variant: str, stat: str) -> list[Any]:
        return [namespace, name, "EndpointName", endpoint_name, "VariantName", variant, {"stat": stat}]

    def widget(title: str, metrics: list[list[Any]], y: int, x: int = 0) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "period": 60,
                "view": "timeSeries",
            },
        }

    each = variants or ["AllTraffic"]
    return {
        "widgets": [
            widget("Invocations", [metric("AWS/SageMaker", "Invocations", v, "Sum") for v in each], 0),
            widget(
                "Errors (4xx, 5xx)",
                [
                    metric("AWS/SageMaker", n, v, "Sum")
                    for v in each
                    for n in ("Invocation4XXErrors", "Invocation5XXErrors")
                ],
                0,
                12,
            ),
            widget(
                "ModelLatency (µs): p50, p95, p99",
                [metric("AWS/SageMaker", "ModelLatency", v, s) for v in each for s in ("p50", "p95", "p99")],
                6,
            ),
            widget(
                "CPU and memory (%)",
                [
                    metric("/aws/sagemaker/Endpoints", n, v, "Average")
                    for v in each
                    for n in ("CPUUtilization", "MemoryUtilization")
                ],
                6,
                12,
            ),
        ]
    }


class SageMakerMonitoringBackend(MonitoringBackend):
    """Monitoring jobs on SageMaker, records on S3, schedules in EventBridge Scheduler (see the module).

    Args:
        settings: ``s3_bucket``, ``sagemaker_role_arn``, ``training_images["monitoring"]``,
            ``monitoring_state_machine_arn`` and ``scheduler_role_arn``.
        sagemaker_client, s3_client, scheduler_client, cloudwatch_client: boto3 clients to use.
        poll_s: seconds between two looks at a job.
        wait_budget_s: seconds one call waits before answering TransientError.
        instance_type: the processing instance.
    """

    def __init__(
        self,
        settings: Settings,
        sagemaker_client: Any = None,
        s3_client: Any = None,
        scheduler_client: Any = None,
        cloudwatch_client: Any = None,
        poll_s: float = 10.0,
        wait_budget_s: float = WAIT_BUDGET_S,
        instance_type: str = "ml.m5.xlarge",
    ) -> None:
        self._settings = settings
        self._sagemaker = sagemaker_client or aws_client(settings, "sagemaker")
        self._s3 = s3_client or aws_client(settings, "s3")
        self._scheduler = scheduler_client or aws_client(settings, "scheduler")
        self._cloudwatch = cloudwatch_client or aws_client(settings, "cloudwatch")
        self._poll_s = poll_s
        self._wait_budget_s = wait_budget_s
        self._instance_type = instance_type

    def _bucket(self) -> str:
        if not self._settings.s3_bucket:
            raise MonitoringError("AWS mode monitors on SageMaker: set MLOPS_BUCKET to the stack's bucket")
        return f"s3://{self._settings.s3_bucket}"

    def _job_prefix(self, endpoint_name: str, job_name: str) -> str:
        return f"{self._bucket()}/monitoring/{endpoint_name}/jobs/{job_name}"

    # -- jobs ---------------------------------------------------------------------------------

    def run_monitoring_job(self, request: MonitoringJobRequest) -> MonitoringReport:
        """Run the monitoring processing job (or find its report) and return the report.

        Raises:
            MonitoringError: no bucket, role or image; a baseline not on S3; SageMaker refused the
                job, or the job failed (the program's failure file, else SageMaker's reason).
            TransientError: SageMaker or S3 throttled, or the job has not ended within the wait
                budget; retry to wait on (the retried call finds the job by name).
        """
        prefix = self._job_prefix(request.endpoint_name, request.job_name)
        with translated(f"monitor {request.endpoint_name}", "SageMaker", MonitoringError):
            if not object_exists(self._s3, f"{prefix}/output/report.json"):
                capture = f"{self._bucket()}/capture/{request.endpoint_name}/"
                if not self._has_objects(capture):
                    self._write_empty_report(request, prefix)
                else:
                    self._start(request, prefix, capture)
                    reason = wait_for_processing_job(
                        self._sagemaker, self._s3, request.job_name, prefix, request.max_runtime_s,
                        self._poll_s, self._wait_budget_s,
                    )  # fmt: skip
                    if reason is not None:
                        log = log_link(self._settings.aws_region, request.job_name)
                        raise MonitoringError(
                            f"monitoring job {request.job_name} failed: {reason} (log: {log})"
                        )
            return self._read(request.endpoint_name, request.job_name)

    def _start(self, request: MonitoringJobRequest, prefix: str, capture: str) -> None:
        image = self._settings.training_images.get(IMAGE_FAMILY)
        if not image or not self._settings.sagemaker_role_arn:
            raise MonitoringError(
                "AWS mode monitors in a SageMaker processing job: set MLOPS_TRAINING_IMAGE_MONITORING to the "
                "monitoring image and MLOPS_SAGEMAKER_ROLE_ARN to the stack's SageMaker role"
            )
        if not request.baseline_uri.startswith("s3://"):
            raise MonitoringError(f"the baseline must be on S3, got {request.baseline_uri[:200]!r}")
        inputs = {
            "capture": capture,
            "baseline": request.baseline_uri.rsplit("/", 1)[0] + "/",
            "config": f"{prefix}/input/config/",
        }
        truth = f"{self._bucket()}/ground_truth/{request.endpoint_name}/"
        if self._has_objects(truth):
            inputs["ground_truth"] = truth
        definition = processing_job_definition(
            request.job_name,
            image,
            self._settings.sagemaker_role_arn,
            ENTRYPOINT,
            inputs,
            f"{prefix}/output",
            request.max_runtime_s,
            self._instance_type,
            {"endpoint": request.endpoint_name},
        )
        start_processing_job(
            self._sagemaker,
            self._s3,
            definition,
            f"{prefix}/input/config/monitoring.json",
            job_config(request),
        )

    def _write_empty_report(self, request: MonitoringJobRequest, prefix: str) -> None:
        body = {
            "endpoint_name": request.endpoint_name,
            "status": "Completed",
            "since": request.since,
            "until": request.until,
            "records": 0,
            "rows": 0,
            "plots": {},
        }
        markdown = (
            f"# Monitoring report: {request.endpoint_name}\n\nNo request has been captured yet "
            f"(s3://{self._settings.s3_bucket}/capture/{request.endpoint_name}/ is empty): "
            "nothing was compared.\n"
        )
        write_object(self._s3, f"{prefix}/output/report.md", markdown.encode(), "text/markdown")
        write_object(self._s3, f"{prefix}/output/report.json", json.dumps(body).encode(), "application/json")

    def _has_objects(self, prefix: str) -> bool:
        bucket, key = split_s3_uri(prefix)
        return bool(self._s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))

    def describe_monitoring_job(self, job_name: str) -> MonitoringReport:
        """Return a finished job's report, found by its SageMaker tag or on S3.

        Raises:
            NotFoundError: no finished job has that name.
        """
        return self._read(self._endpoint_of(job_name), job_name)

    def read_report_markdown(self, job_name: str) -> tuple[str, dict[str, str]]:
        """Return ``report.md`` and its plots (relative name -> ``s3://`` URI).

        Raises:
            NotFoundError: no finished job has that name.
        """
        output = f"{self._job_prefix(self._endpoint_of(job_name), job_name)}/output"
        with translated(f"read monitoring job {job_name}", "S3", MonitoringError):
            body = json.loads(read_object(self._s3, f"{output}/report.json"))
            markdown = read_object(self._s3, f"{output}/report.md").decode("utf-8", "replace")
        return markdown, {str(path): f"{output}/{path}" for path in (body.get("plots") or {}).values()}

    def _endpoint_of(self, job_name: str) -> str:
        bucket, _ = split_s3_uri(self._bucket() + "/")
        paginator = self._s3.get_paginator("list_objects_v2")
        with translated(f"find monitoring job {job_name}", "S3", MonitoringError):
            for page in paginator.paginate(Bucket=bucket, Prefix="monitoring/", Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    endpoint = common["Prefix"].split("/")[1]
                    if object_exists(self._s3, f"{self._job_prefix(endpoint, job_name)}/output/report.json"):
                        return endpoint
        raise NotFoundError(f"no finished monitoring job is named {job_name!r}")

    def _read(self, endpoint_name: str, job_name: str) -> MonitoringReport:
        output = f"{self._job_prefix(endpoint_name, job_name)}/output"
        try:
            body = json.loads(read_object(self._s3, f"{output}/report.json"))
        except (ClientError, ValueError) as err:
            raise NotFoundError(f"monitoring job {job_name} has no readable report: {err}") from err
        return report_from(
            body,
            job_name,
            lambda relative: f"{output}/{relative}",
            log_link(self._settings.aws_region, job_name),
        )

    # -- ground truth -------------------------------------------------------------------------

    def put_ground_truth(self, endpoint_name: str, labels: dict[str, str]) -> GroundTruthReceipt:
        """Write the labels as one object under ``ground_truth/{endpoint}/yyyy/mm/dd/hh/``.

        Raises:
            MonitoringError: S3 refused.
        """
        now = dt.datetime.now(dt.UTC)
        hour = now.strftime("%Y/%m/%d/%H")
        uri = f"{self._bucket()}/ground_truth/{endpoint_name}/{hour}/{uuid.uuid4()}.jsonl"
        with translated(f"store ground truth of {endpoint_name}", "S3", MonitoringError):
            write_object(self._s3, uri, ground_truth_lines(labels).encode(), "application/jsonlines")
        return GroundTruthReceipt(endpoint_name=endpoint_name, uri=uri, records=len(labels))

    # -- schedules and state ------------------------------------------------------------------

    def put_monitoring_schedule(self, schedule: MonitoringSchedule) -> MonitoringSchedule:
        """Store the schedule on S3, create or update its Scheduler schedules, write its dashboard.

        Raises:
            MonitoringError: no monitoring state machine or Scheduler role configured, or AWS
                refused (the message names the call).
        """
        uri = f"{self._bucket()}/monitoring/{schedule.endpoint_name}/schedule.json"
        with translated(f"schedule monitoring of {schedule.endpoint_name}", "AWS", MonitoringError):
            write_object(self._s3, uri, schedule.model_dump_json(indent=1).encode(), "application/json")
            if schedule.monitoring is not None:
                self._schedule("monitor", schedule.endpoint_name, schedule.monitoring.schedule, {})
                self._dashboard(schedule.endpoint_name)
            if schedule.triggers is not None and schedule.triggers.schedule:
                self._schedule(
                    "retrain", schedule.endpoint_name, schedule.triggers.schedule, {"trigger": "schedule"}
                )
        return schedule

    def _schedule(self, kind: str, endpoint_name: str, expression: str, extra: dict[str, str]) -> None:
        machine, role = self._settings.monitoring_state_machine_arn, self._settings.scheduler_role_arn
        if not machine or not role:
            raise MonitoringError(
                "scheduling needs MLOPS_MONITORING_STATE_MACHINE_ARN and MLOPS_SCHEDULER_ROLE_ARN "
                "(set by the stack)"
            )
        arguments = {
            "Name": schedule_name(kind, endpoint_name),
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": machine,
                "RoleArn": role,
                "Input": json.dumps({"endpoint_name": endpoint_name, **extra}),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
            },
            "State": "ENABLED",
            "Description": f"issue-mlops: {kind} {endpoint_name} on {expression}",
        }
        try:
            self._scheduler.create_schedule(**arguments)
        except ClientError as err:
            if error_code(err) != "ConflictException":
                raise
            self._scheduler.update_schedule(**arguments)

    def _dashboard(self, endpoint_name: str) -> None:
        try:
            described = self._sagemaker.describe_endpoint(EndpointName=endpoint_name)
            variants = [v["VariantName"] for v in described.get("ProductionVariants", [])]
        except ClientError:
            variants = []
        body = dashboard_body(endpoint_name, variants, self._settings.aws_region)
        self._cloudwatch.put_dashboard(
            DashboardName=f"mlops-{endpoint_name}"[:255], DashboardBody=json.dumps(body)
        )

    def get_monitoring_schedule(self, endpoint_name: str) -> MonitoringSchedule:
        """Read ``monitoring/{endpoint}/schedule.json`` from S3.

        Raises:
            NotFoundError: the endpoint has none.
        """
        uri = f"{self._bucket()}/monitoring/{endpoint_name}/schedule.json"
        try:
            return MonitoringSchedule.model_validate_json(read_object(self._s3, uri))
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "404"):
                raise NotFoundError(f"endpoint {endpoint_name!r} is not monitored") from err
            raise MonitoringError(f"cannot read {uri}: {err}") from err

    def list_monitoring_schedules(self) -> list[MonitoringSchedule]:
        """Every schedule under ``monitoring/*/schedule.json``."""
        bucket, _ = split_s3_uri(self._bucket() + "/")
        found = []
        with translated("list monitoring schedules", "S3", MonitoringError):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="monitoring/"
            ):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/schedule.json") and item["Key"].count("/") == 2:
                        body = self._s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                        found.append(MonitoringSchedule.model_validate_json(body))
        return sorted(found, key=lambda s: s.endpoint_name)

    def get_monitor_state(self, endpoint_name: str) -> MonitorState:
        """Read ``monitoring/{endpoint}/state.json`` (an empty state when there is none)."""
        uri = f"{self._bucket()}/monitoring/{endpoint_name}/state.json"
        try:
            return MonitorState.model_validate_json(read_object(self._s3, uri))
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "404"):
                return MonitorState()
            raise MonitoringError(f"cannot read {uri}: {err}") from err

    def save_monitor_state(self, endpoint_name: str, state: MonitorState) -> MonitorState:
        """Write ``monitoring/{endpoint}/state.json`` (one PutObject: whole or not at all).

        Raises:
            MonitoringError: S3 refused.
        """
        uri = f"{self._bucket()}/monitoring/{endpoint_name}/state.json"
        with translated(f"save the monitor's state of {endpoint_name}", "S3", MonitoringError):
            write_object(self._s3, uri, state.model_dump_json().encode(), "application/json")
        return state

    def data_version(self, source: str) -> str:
        """An ``s3://`` source's VersionId (the bucket is versioned), else its ETag; ``""`` otherwise.

        Raises:
            MonitoringError: the object cannot be read.
        """
        if not source.startswith("s3://"):
            return ""
        bucket, key = split_s3_uri(source)
        with translated(f"read the version of {source}", "S3", MonitoringError):
            head = self._s3.head_object(Bucket=bucket, Key=key)
        version = head.get("VersionId")
        return (
            f"version:{version}"
            if version and version != "null"
            else f"etag:{head.get('ETag', '').strip(chr(34))}"
        )
