"""Error classes shared by the MCP server, its backends and the agents.

One class per failure mode under ``MlopsError``. Each class has a stable ``code`` and says
whether it is ``retryable`` (trying again may succeed). Across MCP an error travels as
structured data (``ErrorPayload``: type, code, retryable, message) in the tool result's
structured content, and ``from_payload`` rebuilds the same class on the agent's side, so the
ASL's ``Retry`` clauses can match the class names of the retryable errors
(``RETRYABLE_ERRORS``) and its ``Catch`` clauses route the rest to the failure record.
Messages name what failed, the value received and the fix.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class MlopsError(Exception):
    """Base class of every error this project raises on purpose.

    Attributes:
        code: a stable, upper-case identifier of the failure mode.
        retryable: whether the same call may succeed later.
    """

    code: str = "MLOPS_ERROR"
    retryable: bool = False


class TransientError(MlopsError):
    """A temporary failure (a server not reachable, a throttled API): retrying may succeed."""

    code = "TRANSIENT"
    retryable = True


class NotFoundError(MlopsError):
    """A named resource (job, issue, model, execution) does not exist."""

    code = "NOT_FOUND"


class WriteNotAllowedError(MlopsError):
    """A tool that changes the world was called on a server started without ``--allow-write``."""

    code = "WRITE_NOT_ALLOWED"


class InvalidArgumentError(MlopsError):
    """A tool was called with arguments that do not fit its input schema."""

    code = "INVALID_ARGUMENT"


class DatasetError(MlopsError):
    """A dataset cannot be loaded, cleaned or split."""

    code = "DATASET"


class TrainingJobError(MlopsError):
    """A training job cannot be started."""

    code = "TRAINING_JOB"


class TrainingJobFailed(MlopsError):
    """A training job ended in Failed or Stopped; the message carries its failure reason."""

    code = "TRAINING_JOB_FAILED"


class EvaluationError(MlopsError):
    """A model cannot be evaluated."""

    code = "EVALUATION"


class RegistryError(MlopsError):
    """A model cannot be registered."""

    code = "REGISTRY"


class HistoryError(MlopsError):
    """A history record cannot be written or committed."""

    code = "HISTORY"


class NotificationError(MlopsError):
    """A notification or comment cannot be delivered."""

    code = "NOTIFICATION"


class EndpointError(MlopsError):
    """An endpoint cannot be created, changed or reached: the champion keeps serving."""

    code = "ENDPOINT"


class MonitoringError(MlopsError):
    """A monitoring job, its schedule, its state or ground truth cannot be run, read or written."""

    code = "MONITORING"


class InternalError(MlopsError):
    """An unexpected failure inside a tool (a bug): its class and message are kept for the report."""

    code = "INTERNAL"


class ToolFailed(MlopsError):
    """An MCP tool failed without a structured error (an SDK-level failure, an unknown class)."""

    code = "TOOL_FAILED"


ERRORS: dict[str, type[MlopsError]] = {
    cls.__name__: cls
    for cls in (
        MlopsError,
        TransientError,
        NotFoundError,
        WriteNotAllowedError,
        InvalidArgumentError,
        DatasetError,
        TrainingJobError,
        TrainingJobFailed,
        EvaluationError,
        RegistryError,
        HistoryError,
        NotificationError,
        EndpointError,
        MonitoringError,
        InternalError,
        ToolFailed,
    )
}

#: The class names the workflow's ``Retry`` clauses match (besides Lambda's own service errors).
RETRYABLE_ERRORS: tuple[str, ...] = tuple(name for name, cls in ERRORS.items() if cls.retryable)


class ErrorPayload(BaseModel):
    """An error as it travels across MCP (``structuredContent["error"]`` of an ``isError`` result).

    Attributes:
        type: the class name (what the ASL's Retry and Catch match).
        code: the class's stable code.
        retryable: whether trying again may succeed.
        message: what failed, the value received and the fix.
    """

    type: str
    code: str
    retryable: bool
    message: str = Field(max_length=20_000)


def to_payload(err: BaseException) -> ErrorPayload:
    """Describe any exception as an ``ErrorPayload``; non-project exceptions become InternalError.

    Args:
        err: the exception a tool raised.

    Returns:
        The payload; the message is cut to 20,000 characters.
    """
    if isinstance(err, MlopsError):
        return ErrorPayload(
            type=type(err).__name__, code=err.code, retryable=err.retryable, message=str(err)[:20_000]
        )
    return ErrorPayload(
        type=InternalError.__name__,
        code=InternalError.code,
        retryable=False,
        message=f"{type(err).__name__}: {err}"[:20_000],
    )


def from_payload(payload: dict[str, Any] | ErrorPayload) -> MlopsError:
    """Rebuild the exception an ``ErrorPayload`` describes.

    Returns:
        An instance of the named class; an unknown name becomes ``ToolFailed`` (keeping the
        name in the message) with the payload's ``retryable``.
    """
    error = payload if isinstance(payload, ErrorPayload) else ErrorPayload.model_validate(payload)
    cls = ERRORS.get(error.type)
    if cls is None:
        rebuilt: MlopsError = ToolFailed(f"{error.type}: {error.message}")
        rebuilt.retryable = error.retryable
        return rebuilt
    return cls(error.message)
