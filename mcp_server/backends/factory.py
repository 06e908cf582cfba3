"""Pick the backend of each capability from the settings. The only place that knows both."""

from __future__ import annotations

from pathlib import Path

from mcp_server.backends.base import Backends, HistoryBackend, IssueBackend
from mcp_server.settings import Settings


class BackendNotAvailableError(RuntimeError):
    """The configured backend does not implement a capability yet."""


def build_issue_backend(settings: Settings) -> IssueBackend:
    """GitHub through PyGithub when a token and repository are set, else the local issue store."""
    if settings.github_token and settings.github_repository:
        from mcp_server.backends.github.issues import GitHubIssueBackend

        return GitHubIssueBackend(settings)
    from mcp_server.backends.local.issues import LocalIssueStore

    return LocalIssueStore(settings)


def build_history_backend(settings: Settings) -> HistoryBackend:
    """GitHub's ``training_history/`` when a token and repository are set, else the local git repository."""
    if settings.github_token and settings.github_repository:
        from mcp_server.backends.github.history import GitHubHistoryBackend

        return GitHubHistoryBackend(settings)
    from mcp_server.backends.local.history import GitHistoryBackend

    return GitHistoryBackend(settings)


def build_backends(settings: Settings, base_dir: Path) -> Backends:
    """Build every capability's backend.

    Args:
        settings: ``settings.backend`` chooses ``local`` or ``aws``.
        base_dir: folder that relative ``file://`` dataset paths resolve against.

    Returns:
        The backends.

    Raises:
        BackendNotAvailableError: ``aws`` was chosen; some of its capabilities have no AWS
            backend yet (the message lists which).
    """
    if settings.backend == "aws":
        raise BackendNotAvailableError(
            "MLOPS_BACKEND=aws is not complete: training and tuning (SageMaker), evaluation (a "
            "processing job), the registry (SageMaker Model Registry), notification (SNS), waiting "
            "runs (DynamoDB) and history (GitHub) have AWS backends in mcp_server/backends/aws/, "
            "but data (S3) and webhook deliveries do not yet; run with MLOPS_BACKEND=local"
        )
    from mcp_server.backends.local.data import LocalDatasetBackend
    from mcp_server.backends.local.deliveries import LocalDeliveryStore
    from mcp_server.backends.local.evaluation import LocalEvaluationBackend
    from mcp_server.backends.local.notification import LocalNotificationBackend
    from mcp_server.backends.local.registry import LocalRegistryBackend
    from mcp_server.backends.local.training import LocalTrainingBackend
    from mcp_server.backends.local.tuning import LocalTuningBackend
    from mcp_server.backends.local.waiting import LocalWaitingRunStore

    training = LocalTrainingBackend(settings)
    return Backends(
        data=LocalDatasetBackend(settings, base_dir),
        training=training,
        tuning=LocalTuningBackend(settings, training),
        evaluation=LocalEvaluationBackend(settings),
        registry=LocalRegistryBackend(settings),
        issues=build_issue_backend(settings),
        history=build_history_backend(settings),
        notification=LocalNotificationBackend(settings),
        waiting=LocalWaitingRunStore(settings),
        deliveries=LocalDeliveryStore(settings),
    )
