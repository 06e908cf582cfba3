"""Monitoring tools: the monitoring job, drift reports, ground truth, schedules, the monitor's state, alerts.

run_monitoring_job, describe_monitoring_job, get_drift_report, put_ground_truth,
put_monitoring_schedule, get_monitoring_schedule, list_monitoring_schedules,
get_monitor_state, save_monitor_state, list_alerts, send_alert and get_data_version.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.backends.base import Backends
from mcp_server.core.monitoring.models import (
    AlertDelivery,
    AlertMessage,
    GroundTruthReceipt,
    Incident,
    MonitoringJobRequest,
    MonitoringReport,
    MonitoringSchedule,
    MonitorState,
)
from mcp_server.errors import InvalidArgumentError
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded

EndpointName = Annotated[
    str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="the endpoint")
]
JobName = Annotated[
    str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="the monitoring job")
]
#: Labels one put_ground_truth call takes.
MAX_LABELS = 100_000


class DriftReport(BaseModel):
    """A monitoring job's Markdown report and its plots (relative name -> URI)."""

    model_config = ConfigDict(extra="forbid")

    job_name: str
    markdown: str
    plots: dict[str, str]


class EndpointAlerts(BaseModel):
    """The open incidents of one monitored endpoint."""

    model_config = ConfigDict(extra="forbid")

    endpoint_name: str
    model_name: str
    incidents: list[Incident]
    last_job: str = ""
    last_status: str = ""


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:  # noqa: C901
    """Register the monitoring tools on ``server``."""
    monitoring = backends.monitoring

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def run_monitoring_job(
        request: Annotated[
            MonitoringJobRequest, Field(description="the endpoint, its baseline and the window")
        ],
    ) -> MonitoringReport:
        """Run the monitoring job over the endpoint's captured requests and return its report.

        A processing job (local, or SageMaker's) reads the capture in ``[since, until)``,
        compares each feature with the training baseline (PSI over its bins; KS for numbers,
        chi-squared for categories), the predictions with the training target, and, where
        ground truth arrived, computes the task's metrics. It writes Model Monitor's
        statistics.json, constraints.json and constraint_violations.json, a Markdown report and
        plots. Unreadable capture lines are skipped and counted (``bad_lines``).

        Returns:
            MonitoringReport: status (Completed or CompletedWithViolations), per-feature drift,
            drifted features, model quality, violation count, and the files' URIs.

        Raises:
            MonitoringError: no baseline, or the job failed (its reason and log).
            TransientError: the job is still running after this call's wait; call again.
        """
        return monitoring.run_monitoring_job(request)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def describe_monitoring_job(job_name: JobName) -> MonitoringReport:
        """Return a finished monitoring job's report.

        Raises:
            NotFoundError: no finished job has that name.
        """
        return monitoring.describe_monitoring_job(job_name)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def get_drift_report(job_name: JobName) -> DriftReport:
        """Return a finished monitoring job's Markdown report and its plots' URIs.

        Raises:
            NotFoundError: no finished job has that name.
        """
        markdown, plots = monitoring.read_report_markdown(job_name)
        return DriftReport(job_name=job_name, markdown=markdown, plots=plots)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def put_ground_truth(
        endpoint_name: EndpointName,
        labels: Annotated[
            dict[str, str],
            Field(description="inference id -> label (the id sent as X-Amzn-SageMaker-Inference-Id)"),
        ],
    ) -> GroundTruthReceipt:
        """Store ground truth for model-quality monitoring, as one batch in SageMaker's format.

        Each label grades the captured request whose inference id (the caller's
        ``X-Amzn-SageMaker-Inference-Id``, else the capture's event id; ``ID:i`` for row i of
        a multi-row request) matches. The next monitoring job computes the task's metrics on
        the labelled rows and reports labels that match no captured request.

        Returns:
            GroundTruthReceipt: where the batch went and how many labels it holds.

        Raises:
            InvalidArgumentError: no labels, more than 100,000, or an id or label over 256 characters.
            MonitoringError: the batch cannot be written.
        """
        if not labels or len(labels) > MAX_LABELS:
            raise InvalidArgumentError(f"send 1 to {MAX_LABELS} labels in one call, got {len(labels)}")
        too_long = next((k for k, v in labels.items() if len(k) > 256 or len(v) > 256), None)
        if too_long is not None:
            raise InvalidArgumentError(f"inference id {too_long[:60]!r} or its label is over 256 characters")
        return monitoring.put_ground_truth(endpoint_name, labels)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def put_monitoring_schedule(
        schedule: Annotated[MonitoringSchedule, Field(description="what to watch and when")],
    ) -> MonitoringSchedule:
        """Create or replace an endpoint's monitoring schedule.

        Locally ``mlops serve`` runs it; on AWS EventBridge Scheduler starts the monitoring
        workflow on ``monitoring.schedule`` (and on the retraining schedule), and a CloudWatch
        dashboard of the endpoint is written.

        Raises:
            MonitoringError: it cannot be stored or scheduled.
        """
        return monitoring.put_monitoring_schedule(schedule)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def get_monitoring_schedule(endpoint_name: EndpointName) -> MonitoringSchedule:
        """Return an endpoint's monitoring schedule.

        Raises:
            NotFoundError: the endpoint is not monitored.
        """
        return monitoring.get_monitoring_schedule(endpoint_name)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def list_monitoring_schedules() -> list[MonitoringSchedule]:
        """Return every monitored endpoint's schedule, by endpoint name."""
        return monitoring.list_monitoring_schedules()

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def get_monitor_state(endpoint_name: EndpointName) -> MonitorState:
        """Return what the monitor remembers of an endpoint: the last window, open incidents, retrains."""
        return monitoring.get_monitor_state(endpoint_name)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def save_monitor_state(
        endpoint_name: EndpointName,
        state: Annotated[MonitorState, Field(description="the whole state")],
    ) -> MonitorState:
        """Replace the monitor's state of an endpoint.

        Raises:
            MonitoringError: it cannot be written.
        """
        return monitoring.save_monitor_state(endpoint_name, state)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def list_alerts(
        endpoint_name: Annotated[str | None, Field(max_length=63, description="only this endpoint")] = None,
    ) -> list[EndpointAlerts]:
        """Return the open incidents of every monitored endpoint (or one).

        Each incident was alerted once when it opened; it closes, with a resolved notice, at
        the first monitoring job that no longer finds it.
        """
        found = []
        for schedule in monitoring.list_monitoring_schedules():
            if endpoint_name and schedule.endpoint_name != endpoint_name:
                continue
            state = monitoring.get_monitor_state(schedule.endpoint_name)
            found.append(
                EndpointAlerts(
                    endpoint_name=schedule.endpoint_name,
                    model_name=schedule.model_name,
                    incidents=list(state.incidents.values()),
                    last_job=state.last_job,
                    last_status=state.last_status,
                )
            )
        return found

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def send_alert(
        alert: Annotated[AlertMessage, Field(description="the alert and the channels it goes to")],
    ) -> list[AlertDelivery]:
        """Deliver an alert to GitHub, Slack, e-mail and SNS as its channels say.

        GitHub: a comment on the model's issue, or a new issue when it is closed. Each channel
        is retried with backoff; one that stays down is logged and reported as not delivered,
        and never stops the others.

        Returns:
            One AlertDelivery per channel: delivered, attempts, target, error.
        """
        return backends.alerts.deliver(alert)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def get_data_version(
        source: Annotated[str, Field(max_length=2048, description="a dataset source URI")],
    ) -> str:
        """Return a dataset source's current version: a ``file://`` file's SHA-256, an S3 object's version.

        ``""`` for sources without one (``sklearn://``). The data-change trigger compares it with
        the version the deployed model was trained on.

        Raises:
            MonitoringError: the source cannot be read.
        """
        return monitoring.data_version(source)
