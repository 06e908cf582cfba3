"""What monitoring passes around: schedules, job requests, reports, findings and incidents. Pure."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.models import IssueRef
from mcp_server.core.monitoring.drift import FeatureDrift
from mcp_server.core.spec.schema import MonitoringSpec, TriggersSpec

#: A monitoring job's end, as SageMaker names a monitoring execution's.
MonitoringStatus = Literal["Completed", "CompletedWithViolations", "Failed"]
#: What an alert is about.
FindingKind = Literal["drift", "metric_floor", "error_rate", "p95_latency", "capture"]
#: What starts a retrain execution.
TriggerKind = Literal["schedule", "drift", "metric_floor", "data_change", "code_change"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitoringSchedule(_Record):
    """An endpoint's monitoring: what to watch, how often, who to tell, what to retrain.

    Written when a run with a monitoring or retraining section deploys (the promoted model);
    read by the scheduler (``mlops serve`` locally, EventBridge Scheduler on AWS).

    Attributes:
        endpoint_name: the watched endpoint.
        model_name: the registered model it serves.
        model_version: the semantic version deployed when the schedule was written.
        issue: the issue of the run that deployed it (alerts go there).
        spec: the deploying run's normalised spec (a retrain starts from it).
        spec_hash: its hash.
        monitoring: the monitoring section (None: retraining triggers only).
        triggers: the retraining triggers (None: none).
        baseline_uri: the drift baseline (``baseline.json``) of the deployed version.
        data_source: the spec's dataset source (the data-change trigger hashes it).
        data_version: the source's content hash or object version when it was deployed.
        training_data_version: the prepared dataset's version the model was trained on.
        run_config: the deploying run's pacing (``RunConfig``), reused by retrain runs.
        created_at: when it was written (ISO-8601 UTC).
    """

    endpoint_name: str
    model_name: str
    model_version: str = ""
    issue: IssueRef
    spec: dict[str, Any]
    spec_hash: str
    monitoring: MonitoringSpec | None = None
    triggers: TriggersSpec | None = None
    baseline_uri: str | None = None
    data_source: str = ""
    data_version: str = ""
    training_data_version: str = ""
    run_config: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""

    @property
    def check_expression(self) -> str | None:
        """When the monitoring workflow runs (None when nothing needs checking).

        ``monitoring.schedule``; hourly for a data-change trigger without monitoring.
        """
        if self.monitoring is not None:
            return self.monitoring.schedule
        if self.triggers is not None and self.triggers.data_change:
            return "rate(1 hour)"
        return None


class MonitoringJobRequest(_Record):
    """Run the monitoring job over an endpoint's captured requests.

    Attributes:
        job_name: the processing job's name (unique; a finished one is not run again).
        endpoint_name: the endpoint whose capture is read.
        baseline_uri: the training baseline (``baseline.json``).
        since: read requests captured at or after this time (ISO-8601 UTC; None: all).
        until: and before this one (ISO-8601 UTC).
        task: the model's task (its metrics for model quality).
        target: the target column (ground truth's name in reports).
        drift_psi: the PSI above which a feature drifts.
        metric_floor: metric -> floor for model quality.
        max_runtime_s: the job's time limit, seconds.
    """

    job_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    endpoint_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    baseline_uri: str = Field(max_length=2048)
    since: str | None = None
    until: str
    task: str = "classification"
    target: str | None = None
    drift_psi: float = Field(0.2, gt=0)
    metric_floor: dict[str, float] = Field(default_factory=dict)
    max_runtime_s: int = Field(3600, ge=1, le=86_400)


class MonitoringReport(_Record):
    """A monitoring job's findings and where its files are.

    Attributes:
        job_name, endpoint_name: which job, which endpoint.
        status: ``Completed`` (no violation), ``CompletedWithViolations`` or ``Failed``.
        since, until: the capture window read (ISO-8601 UTC).
        records: capture records read; rows: feature rows in them (a request may hold several).
        bad_lines: capture lines skipped as unreadable (counted, never fatal).
        features: per-feature drift, the baseline's feature order.
        prediction: drift of the predictions against the training target's distribution.
        drifted_features: the features whose PSI exceeds the threshold.
        quality: metric -> value on the labelled captured rows; labelled_rows counts them.
        unknown_ground_truth: ground-truth records whose inference id no capture holds.
        violations: the number of entries of ``constraint_violations.json``.
        statistics_uri, constraints_uri, violations_uri, report_uri, markdown_uri: the outputs.
        plots: plot name -> PNG URI.
        system: the endpoint's system metrics over the window (a local endpoint's samples):
            ``samples``, ``requests``, ``errors_5xx`` and the peaks ``max_rps``, ``max_p95_ms``,
            ``max_p99_ms`` (milliseconds), ``max_cpu_percent`` (percent of one core) and
            ``max_memory_mb`` (MiB); empty on SageMaker (CloudWatch has these series).
        feedback_rows: labelled captured rows written as training rows (``feedback.parquet``);
            feedback_uri: that file (empty without labelled rows).
        log_uri: the job's log.
        failure_reason: why a Failed job failed.
        duration_s: the job's wall time, seconds.
    """

    job_name: str
    endpoint_name: str
    status: MonitoringStatus
    since: str | None = None
    until: str = ""
    records: int = 0
    rows: int = 0
    bad_lines: int = 0
    features: list[FeatureDrift] = Field(default_factory=list)
    prediction: FeatureDrift | None = None
    drifted_features: list[str] = Field(default_factory=list)
    quality: dict[str, float] = Field(default_factory=dict)
    labelled_rows: int = 0
    unknown_ground_truth: int = 0
    violations: int = 0
    statistics_uri: str = ""
    constraints_uri: str = ""
    violations_uri: str = ""
    report_uri: str = ""
    markdown_uri: str = ""
    plots: dict[str, str] = Field(default_factory=dict)
    system: dict[str, float] = Field(default_factory=dict)
    feedback_rows: int = 0
    feedback_uri: str = ""
    log_uri: str = ""
    failure_reason: str = ""
    duration_s: float = 0.0


class GroundTruthReceipt(_Record):
    """What ``put_ground_truth`` stored.

    Attributes:
        endpoint_name: the endpoint the labels belong to.
        uri: where the batch was written.
        records: labels stored.
        duplicates: inference ids repeated within the batch (the last label kept).
    """

    endpoint_name: str
    uri: str
    records: int
    duplicates: int = 0


class Finding(_Record):
    """One alert rule that fires.

    Attributes:
        kind: drift, metric_floor, error_rate, p95_latency or capture.
        key: the incident it belongs to (``drift``, ``metric_floor:f1``, ...): one alert per
            incident, a resolved notice when the key stops firing.
        summary: one line for a human.
        value: the measured value; threshold: the rule's limit.
    """

    kind: FindingKind
    key: str
    summary: str
    value: float | None = None
    threshold: float | None = None


class Incident(_Record):
    """An alert that is open: raised once, resolved once.

    Attributes:
        key: the finding key.
        opened_at: when it was raised (ISO-8601 UTC); last_seen_at: the last job that found it.
        summary: the finding's summary when raised.
        comment_url: where the GitHub alert went.
    """

    key: str
    opened_at: str
    last_seen_at: str
    summary: str
    comment_url: str = ""


class MonitorState(_Record):
    """What the monitor remembers of an endpoint between runs.

    Attributes:
        last_until: the end of the last window read (the next job starts there).
        last_job: the last monitoring job's name; last_status: its status.
        incidents: open incidents by key.
        last_scheduled_retrain_at: when the schedule trigger last started a retrain.
        retrains: retrain executions started by triggers, newest last (at most 50 kept).
        data_version_retrained: the dataset source's version the last data-change retrain was
            started for (a challenger that was not promoted does not fire the trigger again).
    """

    last_until: str | None = None
    last_job: str = ""
    last_status: str = ""
    incidents: dict[str, Incident] = Field(default_factory=dict)
    last_scheduled_retrain_at: str | None = None
    retrains: list[dict[str, str]] = Field(default_factory=list)
    data_version_retrained: str = ""


class AlertMessage(_Record):
    """An alert (or a resolved notice) for every configured channel.

    Attributes:
        endpoint_name: the endpoint it is about.
        model_name: its registered model.
        kind: ``alert`` (an incident opened) or ``resolved`` (it cleared).
        subject: one line (at most 100 characters: SNS's limit).
        text: the plain-text body (Slack, e-mail, SNS).
        markdown: the GitHub comment's body.
        issue_number: the model's issue; issue_title: its title (a new issue reuses it).
        spec_yaml: the last spec, for a new issue's body when the model's issue is closed.
        labels: the labels a new issue gets.
        channels: which channels to use (the spec's ``monitoring.alerts``).
        dedupe_key: one delivery per key and channel (the incident and its transition).
    """

    endpoint_name: str
    model_name: str
    kind: Literal["alert", "resolved"] = "alert"
    subject: str = Field(max_length=100)
    text: str = Field(max_length=40_000)
    markdown: str = Field(max_length=60_000)
    issue_number: int | None = None
    issue_title: str = ""
    spec_yaml: str = ""
    labels: list[str] = Field(default_factory=list)
    channels: dict[str, Any] = Field(default_factory=dict)
    dedupe_key: str = ""


class AlertDelivery(_Record):
    """What happened to an alert on one channel.

    Attributes:
        channel: ``github``, ``slack``, ``email`` or ``sns``.
        delivered: whether it went out.
        attempts: tries made.
        target: where it went (a comment or issue URL, a webhook host, addresses, a message id).
        error: the last failure when it did not go out.
    """

    channel: Literal["github", "slack", "email", "sns"]
    delivered: bool
    attempts: int = 0
    target: str = ""
    error: str = ""
