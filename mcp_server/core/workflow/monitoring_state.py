"""The typed state of the monitoring workflow (``statemachine/monitoring_workflow.asl.json``). Pure.

| Task state | ResultPath | result model |
| --- | --- | --- |
| RunMonitoringJob | ``$.job`` | ``MonitoringJobStep`` |
| EvaluateAlarms | ``$.alarms`` | ``AlarmsStep`` |
| Alert | ``$.alert`` | ``AlertStep`` |
| StartRetraining | ``$.retraining`` | ``RetrainingStep`` |
| ReportFailure | ``$.failure_report`` | ``AlertStep`` |
| a Catch | ``$.error`` | ``CaughtError`` |

The input is ``MonitoringInput``: EventBridge Scheduler's schedule (or ``mlops monitor``, or
the local scheduler) names the endpoint and what started it. Everything is a reference: the
full report stays with the job and is read again by name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.monitoring.models import Finding, Incident
from mcp_server.core.workflow.state import CaughtError

#: What started a monitoring execution: its schedule, a retraining schedule, a person, or a push.
MonitoringTrigger = Literal["monitor", "schedule", "manual", "code_change"]


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitoringInput(_State):
    """The execution input.

    Attributes:
        endpoint_name: the monitored endpoint.
        trigger: ``monitor`` (the monitoring schedule), ``schedule`` (the retraining
            schedule: retrain without monitoring first), ``manual`` (``mlops monitor``) or
            ``code_change`` (a push that changed the model's code: retrain without monitoring).
        requested_by: who asked (``manual``), or who pushed (``code_change``).
        until: the window's end (ISO-8601 UTC); None: the execution's start.
        reason: why a ``code_change`` execution was started (the push and the paths).
        delivery_id: the webhook delivery that started it (``code_change``).
    """

    endpoint_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    trigger: MonitoringTrigger = "monitor"
    requested_by: str = Field("", max_length=100)
    until: str | None = None
    reason: str = Field("", max_length=2000)
    delivery_id: str = Field("", max_length=200)


class MonitoringJobStep(_State):
    """What RunMonitoringJob leaves in ``$.job``: the job and the headline of its report.

    ``job_name`` is empty when no job ran (an endpoint watched for data changes only).
    """

    job_name: str
    status: str
    since: str | None = None
    until: str
    rows: int = 0
    bad_lines: int = 0
    drifted_features: list[str] = Field(default_factory=list)
    report_uri: str = ""


class RetrainReason(_State):
    """A trigger that fired: its kind and why."""

    kind: Literal["schedule", "drift", "metric_floor", "data_change", "code_change"]
    reason: str


class AlarmsStep(_State):
    """What EvaluateAlarms leaves in ``$.alarms``.

    Attributes:
        opened: keys of the incidents this job opened (alerted); resolved: keys it resolved.
        firing: keys still firing.
        notify: whether Alert has anything to send (opened or resolved).
        retrain: the first trigger that fired, if any (StartRetraining acts on it).
        skipped_retrain: why a fired trigger starts nothing (budget spent, a retrain running).
        findings: the findings of the opened incidents (what Alert says).
        resolved_incidents: the incidents that cleared (what Alert announces).
    """

    opened: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    firing: list[str] = Field(default_factory=list)
    notify: bool = False
    retrain: RetrainReason | None = None
    skipped_retrain: str = ""
    findings: list[Finding] = Field(default_factory=list)
    resolved_incidents: list[Incident] = Field(default_factory=list)


class AlertStep(_State):
    """What Alert leaves in ``$.alert``: the report's commit and each channel's delivery."""

    report_url: str = ""
    deliveries: list[dict[str, object]] = Field(default_factory=list)


class RetrainingStep(_State):
    """What StartRetraining leaves in ``$.retraining``: the retrain execution it started."""

    execution_name: str
    execution_arn: str = ""
    issue_number: int
    trigger: RetrainReason
    started: bool = True
    detail: str = ""


class MonitoringState(MonitoringInput):
    """What a monitoring state reads: the input plus each result so far."""

    job: MonitoringJobStep | None = None
    alarms: AlarmsStep | None = None
    alert: AlertStep | None = None
    retraining: RetrainingStep | None = None
    failure_report: AlertStep | None = None
    error: CaughtError | None = None


class MonitoringEvent(_State):
    """What each monitoring Task state sends its agent (``Parameters`` in the ASL)."""

    action: Literal["run", "evaluate", "alert", "report_failure", "start_retraining"]
    state: MonitoringState
    execution: str
    execution_started: str = ""
