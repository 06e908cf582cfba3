"""Error classes shared by the MCP server, its backends and the agents.

One class per failure mode under ``MlopsError``. ``retryable`` tells whether trying again may
succeed; the workflow's ``Retry`` clauses match the class names of retryable errors
(``TransientError``) and its ``Catch`` clauses route the rest to the failure record. Messages
name what failed, the value received and the fix.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error this project raises on purpose."""

    retryable: bool = False


class TransientError(MlopsError):
    """A temporary failure (a server not reachable, a throttled API): retrying may succeed."""

    retryable = True


class NotFoundError(MlopsError):
    """A named resource (job, issue, model, execution) does not exist."""


class WriteNotAllowedError(MlopsError):
    """A tool that changes the world was called on a server started without ``--allow-write``."""


class DatasetError(MlopsError):
    """A dataset cannot be loaded, cleaned or split."""


class TrainingJobError(MlopsError):
    """A training job cannot be started."""


class TrainingJobFailed(MlopsError):
    """A training job ended in Failed or Stopped; the message carries its failure reason."""


class EvaluationError(MlopsError):
    """A model cannot be evaluated."""


class RegistryError(MlopsError):
    """A model cannot be registered."""


class HistoryError(MlopsError):
    """A history record cannot be written or committed."""


class NotificationError(MlopsError):
    """A notification or comment cannot be delivered."""


ERRORS: dict[str, type[MlopsError]] = {
    cls.__name__: cls
    for cls in (
        MlopsError,
        TransientError,
        NotFoundError,
        WriteNotAllowedError,
        DatasetError,
        TrainingJobError,
        TrainingJobFailed,
        EvaluationError,
        RegistryError,
        HistoryError,
        NotificationError,
    )
}
