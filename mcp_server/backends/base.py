"""One narrow interface per capability; ``local`` and ``aws`` implement them.

Tools and agents never branch on which backend is active: ``factory.build_backends`` picks the
implementations from ``Settings``. Every method documents its argument and return shapes and
the ``MlopsError`` subclasses it raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from mcp_server.backends.executions import WorkflowExecutions
from mcp_server.core.deployment.models import (
    DeploymentEvent,
    DesiredEndpoint,
    EndpointDescription,
    EndpointMetrics,
    InvocationResult,
    ModelPackageFiles,
    PackageRequest,
    ReplaySummary,
)
from mcp_server.core.models import (
    Comment,
    DatasetRef,
    Delivery,
    EvaluationReport,
    EvaluationRequest,
    HistoryCommit,
    HistoryRecord,
    IssueRef,
    NotificationReceipt,
    RegisteredModel,
    RegistrationRequest,
    TrainingJob,
    TrainingJobRequest,
    TuningJob,
    TuningJobRequest,
    WaitingRun,
)
from mcp_server.core.monitoring.models import (
    AlertDelivery,
    AlertMessage,
    GroundTruthReceipt,
    MonitoringJobRequest,
    MonitoringReport,
    MonitoringSchedule,
    MonitorState,
)
from mcp_server.core.spec.schema import TrainingSpec


class DatasetBackend(ABC):
    """Loads, cleans, splits and versions datasets."""

    @abstractmethod
    def prepare_dataset(self, spec: TrainingSpec, feedback_uri: str | None = None) -> DatasetRef:
        """Load ``spec.dataset.source``, clean rows, split, and store raw data and splits.

        Idempotent: the same source content, feedback and spec give the same ``dataset_id``.

        Args:
            spec: a validated spec.
            feedback_uri: a monitoring job's ``feedback.parquet`` (labelled captured rows, the
                features and the target) appended to the source's rows before cleaning.

        Raises:
            DatasetError: the source cannot be read, the target column is missing, a split
                would be empty, or the feedback file is not a monitoring job's output.
        """


class TrainingBackend(ABC):
    """Runs training jobs under the SageMaker training contract."""

    @abstractmethod
    def start_training_job(self, request: TrainingJobRequest) -> TrainingJob:
        """Start a training job; starting an existing job name returns that job unchanged.

        Raises:
            TrainingJobError: the job cannot be started (unknown algorithm, missing channel).
        """

    @abstractmethod
    def describe_training_job(self, job_name: str) -> TrainingJob:
        """Return the job's current status, metrics and artifact locations.

        Raises:
            NotFoundError: no job has that name.
        """


class TuningBackend(ABC):
    """Runs hyperparameter tuning jobs: a search whose every trial is a training job."""

    @abstractmethod
    def start_tuning_job(self, request: TuningJobRequest) -> TuningJob:
        """Start the search and return at once; starting an existing name returns that job unchanged.

        Args:
            request: the search (``tuning``: strategy, objective, direction, max_trials,
                parallel_trials, search_space) and the template training job of every trial.

        Returns:
            The tuning job as ``describe_tuning_job`` reports it (``InProgress`` when started).

        Raises:
            TrainingJobError: the search cannot be started (no training program for the
                algorithm, missing channel, a backend that refuses the job).
            TransientError: the backend is throttling or unreachable; retry.
        """

    @abstractmethod
    def describe_tuning_job(self, name: str) -> TuningJob:
        """Return the search's status, every trial (hyperparameters, status, objective) and the best.

        Raises:
            NotFoundError: no tuning job has that name.
            TransientError: the backend is throttling or unreachable; retry.
        """


class EvaluationBackend(ABC):
    """Evaluates a trained model on the held-out test split."""

    @abstractmethod
    def evaluate_model(self, request: EvaluationRequest) -> EvaluationReport:
        """Compute the task's metrics and plots on the test split and store them.

        Raises:
            EvaluationError: the model or the split cannot be loaded or scored.
        """


class RegistryBackend(ABC):
    """The model registry: model package groups, versions and aliases."""

    @abstractmethod
    def register_model(self, request: RegistrationRequest) -> RegisteredModel:
        """Register the model as a new version with its lineage, semantic version and alias.

        Idempotent per (model name, lineage.job_name): registering the same job twice returns
        the version registered the first time.

        Raises:
            RegistryError: the model artifact cannot be read or registered.
        """

    @abstractmethod
    def set_champion(self, model_name: str, version: str) -> RegisteredModel:
        """Mark ``version`` as the champion: the version its endpoint serves at 100 %.

        Locally MLflow's ``champion`` alias moves to it; on SageMaker its model package is
        ``Approved`` (and the previous champion keeps its approval: the registry's history).

        Raises:
            NotFoundError: no such version.
            RegistryError: the registry refused it.
        """


class IssueBackend(ABC):
    """The issue tracker: GitHub through PyGithub, or the local issue store."""

    @abstractmethod
    def post_comment(self, issue_number: int, body: str, idempotency_key: str | None = None) -> Comment:
        """Post ``body`` on the issue.

        With ``idempotency_key``, a second call with the same key returns the first comment
        instead of posting again.

        Raises:
            NotFoundError: the issue does not exist.
        """

    @abstractmethod
    def update_comment(self, issue_number: int, comment_id: int, body: str) -> Comment:
        """Replace the body of one of the issue's comments (the status comment is edited in place).

        Raises:
            NotFoundError: the issue or the comment does not exist.
        """

    @abstractmethod
    def list_comments(self, issue_number: int) -> list[Comment]:
        """Return the issue's comments, oldest first.

        Raises:
            NotFoundError: the issue does not exist.
        """

    @abstractmethod
    def issue_state(self, issue_number: int) -> str:
        """Return ``open`` or ``closed``.

        Raises:
            NotFoundError: the issue does not exist.
        """

    @abstractmethod
    def open_issue(self, title: str, body: str, labels: list[str]) -> IssueRef:
        """Open a new issue with these labels and return its reference.

        Raises:
            NotificationError: the issue cannot be created (the message says why).
        """


class HistoryBackend(ABC):
    """Commits run records as Markdown under training_history/."""

    @abstractmethod
    def record_training_history(
        self, record: HistoryRecord, files: dict[str, str] | None = None
    ) -> HistoryCommit:
        """Write the record and the files it links, update the index, and commit.

        ``files`` maps a relative name to a source URI (plots). Recording the same
        ``record_id`` with the same content twice makes one commit; concurrent calls never lose
        a record.

        Raises:
            HistoryError: the repository cannot be written or committed.
        """

    @abstractmethod
    def record_report(self, folder: str, markdown: str, files: dict[str, str], message: str) -> HistoryCommit:
        """Commit a report (a monitoring job's) as ``training_history/{folder}/report.md`` with its files.

        Args:
            folder: a relative folder under ``training_history/`` (e.g.
                ``monitoring/ENDPOINT/JOB``); no ``..`` and no absolute path.
            markdown: the report; its links are relative to the folder.
            files: relative name (e.g. ``plots/drift_x.png``) -> source URI.
            message: the commit message.

        Returns:
            Where ``report.md`` landed. The run index is not touched.

        Raises:
            HistoryError: an unsafe folder or file name, a source that cannot be read, or a
                commit that fails.
        """


class NotificationBackend(ABC):
    """Publishes run notifications (SNS on AWS, a JSON-lines file locally)."""

    @abstractmethod
    def notify(self, subject: str, message: str, attributes: dict[str, str]) -> NotificationReceipt:
        """Publish a notification. ``subject`` is at most 100 characters (SNS limit).

        Raises:
            NotificationError: the notification cannot be published.
        """


class MonitoringBackend(ABC):
    """Monitoring jobs over an endpoint's captured requests, ground truth, schedules and state.

    Locally: processing jobs in the workspace and files under ``monitoring/``. On AWS:
    SageMaker processing jobs, S3 and EventBridge Scheduler.
    """

    @abstractmethod
    def run_monitoring_job(self, request: MonitoringJobRequest) -> MonitoringReport:
        """Run the monitoring job to its end (or find it finished) and return its report.

        Raises:
            MonitoringError: no baseline, a bad request, or the job failed (its reason and log).
            TransientError: the job is still running after the call's wait budget (AWS).
        """

    @abstractmethod
    def describe_monitoring_job(self, job_name: str) -> MonitoringReport:
        """Return a finished job's report.

        Raises:
            NotFoundError: no such job, or it has not finished.
            MonitoringError: its report cannot be read.
        """

    @abstractmethod
    def read_report_markdown(self, job_name: str) -> tuple[str, dict[str, str]]:
        """Return a finished job's ``report.md`` and its plots (relative name -> URI).

        Raises:
            NotFoundError: no such job.
        """

    @abstractmethod
    def put_ground_truth(self, endpoint_name: str, labels: dict[str, str]) -> GroundTruthReceipt:
        """Store labels (inference id -> label) for model-quality monitoring, as one batch.

        Raises:
            MonitoringError: the batch cannot be written.
        """

    @abstractmethod
    def put_monitoring_schedule(self, schedule: MonitoringSchedule) -> MonitoringSchedule:
        """Create or replace an endpoint's monitoring schedule (and, on AWS, its Scheduler schedules).

        Raises:
            MonitoringError: the schedule cannot be stored or scheduled.
        """

    @abstractmethod
    def get_monitoring_schedule(self, endpoint_name: str) -> MonitoringSchedule:
        """Return an endpoint's monitoring schedule.

        Raises:
            NotFoundError: the endpoint has none.
        """

    @abstractmethod
    def list_monitoring_schedules(self) -> list[MonitoringSchedule]:
        """Return every monitoring schedule, by endpoint name."""

    @abstractmethod
    def get_monitor_state(self, endpoint_name: str) -> MonitorState:
        """Return what the monitor remembers of an endpoint (an empty state the first time)."""

    @abstractmethod
    def save_monitor_state(self, endpoint_name: str, state: MonitorState) -> MonitorState:
        """Store the monitor's state of an endpoint (whole, atomically).

        Raises:
            MonitoringError: it cannot be written.
        """

    @abstractmethod
    def data_version(self, source: str) -> str:
        """The current version of a dataset source (``""`` when it has none: ``sklearn://``).

        A ``file://`` file's SHA-256, an S3 object's version id (or ETag).

        Raises:
            MonitoringError: the source cannot be read.
        """


class AlertBackend(ABC):
    """Delivers alerts to Slack, e-mail, SNS and GitHub (FR-023)."""

    @abstractmethod
    def deliver(self, alert: AlertMessage) -> list[AlertDelivery]:
        """Send the alert to each of its channels; never raises for a channel that is down.

        Each channel is tried with backoff; a channel that still fails is logged and reported
        as failed in the result, and the other channels are still tried.
        """


class WaitingRunStore(ABC):
    """Runs waiting for an operator, with their task tokens (durable across restarts)."""

    @abstractmethod
    def save(self, run: WaitingRun) -> WaitingRun:
        """Store (or replace) the waiting run of ``run.run_id``.

        Raises:
            MlopsError: the store cannot be written.
        """

    @abstractmethod
    def get(self, run_id: str) -> WaitingRun:
        """Return the waiting run.

        Raises:
            NotFoundError: no run of that id is waiting.
        """

    @abstractmethod
    def list(self, issue_number: int | None = None) -> list[WaitingRun]:
        """Return the waiting runs (of one issue when given), oldest first."""

    @abstractmethod
    def remove(self, run_id: str) -> bool:
        """Forget a waiting run; True when it was there."""


class DeliveryStore(ABC):
    """Webhook deliveries, durable from the moment they are answered until their work is done.

    The webhook answers as soon as ``claim`` has stored a delivery; the work (authorisation,
    the spec, comments, starting the execution) happens after the answer, by whoever ``take``s
    it. A delivery id is claimed once for ever, so a redelivery (even after a restart) starts
    nothing.
    """

    @abstractmethod
    def claim(self, delivery: Delivery) -> bool:
        """Store a new delivery; False when its id was claimed before (a redelivery).

        A delivery stored with status ``processing`` and a ``runtime_id`` is claimed and taken
        in one step (its receiver does the work itself).

        Raises:
            MlopsError: the store cannot be written.
        """

    @abstractmethod
    def take(self, delivery_id: str, runtime_id: str) -> Delivery | None:
        """Mark a received delivery as processed by ``runtime_id``; None when someone else has it.

        A delivery held by a runtime that is no longer alive can be taken again.
        """

    @abstractmethod
    def release(self, delivery_id: str, outcome: dict[str, object]) -> Delivery:
        """Give a taken delivery back for a later try (its work could not be done now).

        ``outcome`` says why; ``attempts`` counts the tries.

        Raises:
            NotFoundError: no delivery has that id.
        """

    @abstractmethod
    def finish(self, delivery_id: str, outcome: dict[str, object]) -> Delivery:
        """Record what the delivery's work did (status ``done``).

        Raises:
            NotFoundError: no delivery has that id.
        """

    @abstractmethod
    def get(self, delivery_id: str) -> Delivery:
        """Return the delivery.

        Raises:
            NotFoundError: no delivery has that id.
        """

    @abstractmethod
    def pending(self) -> list[str]:
        """Ids of deliveries waiting for work (received, or held by a dead runtime), oldest first."""


class EndpointBackend(ABC):
    """Packages registered versions and serves them from endpoints with production variants.

    Implementations: ``local.endpoints.LocalEndpointBackend`` (one HTTP server process per
    endpoint on 127.0.0.1) and ``aws.endpoints.SageMakerEndpointBackend``.
    """

    @abstractmethod
    def package_model(self, request: PackageRequest) -> ModelPackageFiles:
        """Write the version's inference Dockerfile, pinned requirements and OpenAPI document beside it.

        Raises:
            EndpointError: the model's metadata cannot be read or names no features.
        """

    @abstractmethod
    def apply(self, desired: DesiredEndpoint) -> EndpointDescription:
        """Make the endpoint serve exactly ``desired``'s variants at its weights (creating it if absent).

        The change is recorded in the endpoint's deployment history. When it fails (a model that
        does not load, a variant that fails ``/ping``, a capacity error) the endpoint keeps
        serving what it served before.

        Raises:
            EndpointError: the endpoint serves another registered model, or the change failed.
        """

    @abstractmethod
    def shift_traffic(
        self, endpoint_name: str, weights: dict[str, float], by: str = "", detail: str = ""
    ) -> EndpointDescription:
        """Set the variants' weights (percent) without changing the variants.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: a weight names a variant the endpoint does not have.
        """

    @abstractmethod
    def describe_endpoint(self, endpoint_name: str) -> EndpointDescription:
        """Return the endpoint's status, variants and deployment history.

        Raises:
            NotFoundError: no such endpoint.
        """

    @abstractmethod
    def list_endpoints(self) -> list[EndpointDescription]:
        """Return every endpoint this project created, by name."""

    @abstractmethod
    def get_endpoint_metrics(self, endpoint_name: str, since: float | None = None) -> EndpointMetrics:
        """Return each variant's requests, error rate and latency percentiles since ``since``.

        Args:
            endpoint_name: the endpoint.
            since: the window's start, seconds since the epoch (None: since the endpoint started
                locally, the last 5 minutes on SageMaker).

        Raises:
            NotFoundError: no such endpoint.
        """

    @abstractmethod
    def invoke_endpoint(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str,
        accept: str = "application/json",
        target_variant: str | None = None,
    ) -> InvocationResult:
        """Send one request to the endpoint and return its answer (a 4xx answer is returned, not raised).

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the endpoint cannot be reached.
        """

    @abstractmethod
    def replay_split(
        self, endpoint_name: str, split_uri: str, feature_names: list[str], target_variant: str, max_rows: int
    ) -> ReplaySummary:
        """Replay up to ``max_rows`` rows of a dataset split (its folder's ``data.parquet``) to a variant.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the split cannot be read, or the endpoint cannot be reached.
        """

    @abstractmethod
    def record_event(self, endpoint_name: str, event: DeploymentEvent) -> None:
        """Append ``event`` to the endpoint's deployment history (a check, a hold, a comparison)."""

    @abstractmethod
    def delete_endpoint(self, endpoint_name: str, by: str = "") -> EndpointDescription:
        """Stop serving and remove the endpoint; its history and captured data are kept.

        Raises:
            NotFoundError: no such endpoint.
        """


@dataclass(frozen=True)
class Backends:
    """The backend of each capability, as the MCP server's tools use them."""

    data: DatasetBackend
    training: TrainingBackend
    tuning: TuningBackend
    evaluation: EvaluationBackend
    registry: RegistryBackend
    issues: IssueBackend
    history: HistoryBackend
    notification: NotificationBackend
    waiting: WaitingRunStore
    deliveries: DeliveryStore
    endpoints: EndpointBackend
    monitoring: MonitoringBackend
    alerts: AlertBackend
    executions: WorkflowExecutions
