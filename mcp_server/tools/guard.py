"""What every tool shares: the write guard and error reporting.

A tool that fails returns an ``isError`` result whose structured content is
``{"error": ErrorPayload}`` (type, code, retryable, message) and whose text is
``[ErrorClass] message`` for people and models reading it. Agents rebuild the same class from
the structured payload (``errors.from_payload``), never from the text. An unexpected exception
is reported the same way as ``InternalError`` (and logged with its traceback).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from mcp_types import CallToolResult, TextContent, ToolAnnotations

from mcp_server.errors import MlopsError, WriteNotAllowedError, to_payload
from mcp_server.settings import Settings

logger = logging.getLogger("mcp_server")
F = TypeVar("F", bound=Callable[..., Any])

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)


def error_result(err: BaseException) -> CallToolResult:
    """Return the ``isError`` tool result reporting ``err`` with its structured payload.

    Args:
        err: the exception; a non-project exception is reported as ``InternalError``.

    Returns:
        ``CallToolResult(is_error=True, content=[text], structured_content={"error": payload})``.
    """
    payload = to_payload(err)
    return CallToolResult(
        content=[TextContent(type="text", text=f"[{payload.type}] {payload.message}")],
        structured_content={"error": payload.model_dump()},
        is_error=True,
    )


def guarded(settings: Settings, *, writes: bool) -> Callable[[F], F]:
    """Decorate a tool: refuse it without ``--allow-write`` when it writes; report its errors.

    Args:
        settings: whose ``allow_write`` decides.
        writes: whether the tool changes the world (starts jobs, registers, comments, commits).

    Returns:
        A decorator keeping the tool's signature (the SDK reads it through ``__wrapped__``); a
        failure is returned as ``error_result`` instead of the declared model.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if writes and not settings.allow_write:
                return error_result(
                    WriteNotAllowedError(
                        f"{fn.__name__} changes the world and this server is read-only; "
                        "start it with --allow-write (MLOPS_ALLOW_WRITE=1)"
                    )
                )
            try:
                return fn(*args, **kwargs)
            except MlopsError as err:
                logger.info("tool %s failed: %s", fn.__name__, err)
                return error_result(err)
            except Exception as err:
                logger.exception("tool %s raised", fn.__name__)
                return error_result(err)

        return wrapper  # type: ignore[return-value]

    return decorate
