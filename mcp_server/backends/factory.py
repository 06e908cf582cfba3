"""Pick the backend of each capability from the settings. The only place that knows both."""

from __future__ import annotations

from pathlib import Path

from mcp_server.backends.base import Backends, DeliveryStore, EndpointBackend, HistoryBackend, IssueBackend
from mcp_server.backends.executions import WorkflowExecutions
from mcp_server.settings import Settings


def build_issue_backend(settings: Settings) -> IssueBackend:
    """GitHub through PyGithub when a token and repository are set, else the local issue store."""
    if settings.github_token and settings.github_repository:
        from mcp_server.backends.github.issues import GitHubIssueBackend

        return GitHubIssueBackend(settings)
    from mcp_server.backends.local.issues import LocalIssueStore

    return LocalIssueStore(settings)


def build_history_backend(settings: Settings) -> HistoryBackend:
    """GitHub's ``training_history/`` when a token and repository are set, else a local git repository."""
    if settings.github_token and settings.github_repository:
        from mcp_server.backends.github.history import GitHubHistoryBackend

        if settings.backend == "aws":  # the plots a record links are on S3
            from mcp_server.backends.aws.clients import aws_client
            from mcp_server.backends.aws.s3 import source_reader

            return GitHubHistoryBackend(settings, read_source=source_reader(aws_client(settings, "s3")))
        return GitHubHistoryBackend(settings)
    from mcp_server.backends.local.history import GitHistoryBackend

    return GitHistoryBackend(settings)


def build_endpoint_backend(settings: Settings) -> EndpointBackend:
    """SageMaker endpoints in AWS mode, else local inference server processes (the CLI's ``endpoints``).

    Raises:
        EndpointError: AWS mode without ``MLOPS_BUCKET``.
    """
    if settings.backend == "aws":
        from mcp_server.backends.aws.endpoints import SageMakerEndpointBackend

        return SageMakerEndpointBackend(settings)
    from mcp_server.backends.local.endpoints import LocalEndpointBackend

    return LocalEndpointBackend(settings)


def build_delivery_store(settings: Settings) -> DeliveryStore:
    """Where webhook deliveries are kept: the DynamoDB state table on AWS, else the workspace.

    Raises:
        MlopsError: AWS mode without ``MLOPS_STATE_TABLE``.
    """
    if settings.backend == "aws":
        from mcp_server.backends.aws.deliveries import DynamoDbDeliveryStore

        return DynamoDbDeliveryStore(settings)
    from mcp_server.backends.local.deliveries import LocalDeliveryStore

    return LocalDeliveryStore(settings)


def build_backends(settings: Settings, base_dir: Path) -> Backends:
    """Build every capability's backend.

    Args:
        settings: ``settings.backend`` chooses ``local`` or ``aws``.
        base_dir: folder that relative ``file://`` dataset paths resolve against.

    Returns:
        The backends.

    Raises:
        MlopsError: ``aws`` was chosen and a setting an AWS backend needs is missing.
    """
    if settings.backend == "aws":
        return build_aws_backends(settings)
    from mcp_server.backends.alerts import AlertDispatcher
    from mcp_server.backends.local.data import LocalDatasetBackend
    from mcp_server.backends.local.evaluation import LocalEvaluationBackend
    from mcp_server.backends.local.monitoring import LocalMonitoringBackend
    from mcp_server.backends.local.notification import LocalNotificationBackend
    from mcp_server.backends.local.registry import LocalRegistryBackend
    from mcp_server.backends.local.training import LocalTrainingBackend
    from mcp_server.backends.local.tuning import LocalTuningBackend
    from mcp_server.backends.local.waiting import LocalWaitingRunStore

    training = LocalTrainingBackend(settings)
    issues = build_issue_backend(settings)
    return Backends(
        data=LocalDatasetBackend(settings, base_dir),
        training=training,
        tuning=LocalTuningBackend(settings, training),
        evaluation=LocalEvaluationBackend(settings),
        registry=LocalRegistryBackend(settings),
        issues=issues,
        history=build_history_backend(settings),
        notification=LocalNotificationBackend(settings),
        waiting=LocalWaitingRunStore(settings),
        deliveries=build_delivery_store(settings),
        endpoints=build_endpoint_backend(settings),
        monitoring=LocalMonitoringBackend(settings, base_dir),
        alerts=AlertDispatcher(settings, issues),
        executions=WorkflowExecutions(settings),
    )


def build_aws_backends(settings: Settings) -> Backends:
    """Build the AWS backend of every capability (``MLOPS_BACKEND=aws``).

    SageMaker for training, tuning, evaluation (a processing job) and the registry; S3 for data;
    DynamoDB for waiting runs and webhook deliveries; SNS for notifications; GitHub for issues
    and history.

    Raises:
        MlopsError: a setting a backend needs is missing (``GITHUB_TOKEN`` and
            ``GITHUB_REPOSITORY``, ``MLOPS_BUCKET``, ``MLOPS_STATE_TABLE``,
            ``MLOPS_SNS_TOPIC_ARN``); the message names it.
    """
    from mcp_server.backends.alerts import AlertDispatcher
    from mcp_server.backends.aws.clients import aws_client
    from mcp_server.backends.aws.data import S3DatasetBackend
    from mcp_server.backends.aws.evaluation import SageMakerEvaluationBackend
    from mcp_server.backends.aws.monitoring import SageMakerMonitoringBackend
    from mcp_server.backends.aws.notification import SnsNotificationBackend
    from mcp_server.backends.aws.registry import SageMakerRegistryBackend
    from mcp_server.backends.aws.training import SageMakerTrainingBackend
    from mcp_server.backends.aws.tuning import SageMakerTuningBackend
    from mcp_server.backends.aws.waiting import DynamoDbWaitingRunStore
    from mcp_server.errors import NotificationError

    if not (settings.github_token and settings.github_repository):
        raise NotificationError(
            "AWS mode comments and commits on GitHub: set GITHUB_REPOSITORY=owner/name and the token "
            "(GITHUB_TOKEN, or MLOPS_GITHUB_TOKEN_SECRET_ARN read at start)"
        )
    issues = build_issue_backend(settings)
    return Backends(
        data=S3DatasetBackend(settings),
        training=SageMakerTrainingBackend(settings),
        tuning=SageMakerTuningBackend(settings),
        evaluation=SageMakerEvaluationBackend(settings),
        registry=SageMakerRegistryBackend(settings),
        issues=issues,
        history=build_history_backend(settings),
        notification=SnsNotificationBackend(settings),
        waiting=DynamoDbWaitingRunStore(settings),
        deliveries=build_delivery_store(settings),
        endpoints=build_endpoint_backend(settings),
        monitoring=SageMakerMonitoringBackend(settings),
        alerts=AlertDispatcher(settings, issues, sns_client=aws_client(settings, "sns")),
        executions=WorkflowExecutions(settings),
    )
