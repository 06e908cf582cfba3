"""What every tool shares: the write guard and error reporting.

Tools raise; the SDK turns a ``ToolError`` into a result with ``isError`` whose text the client
reads. The text starts with ``[ErrorClass]`` so agents can re-raise the same class (the ASL's
Retry/Catch match class names). Any other exception would reach the client as an opaque
"Error executing tool", so it is converted here too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from mcp_server.errors import MlopsError, WriteNotAllowedError
from mcp_server.settings import Settings

logger = logging.getLogger("mcp_server")
F = TypeVar("F", bound=Callable[..., Any])

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)


def tool_error(err: Exception) -> ToolError:
    """Return the ``ToolError`` reporting ``err`` as ``[ClassName] message``."""
    return ToolError(f"[{type(err).__name__}] {err}")


def guarded(settings: Settings, *, writes: bool) -> Callable[[F], F]:
    """Decorate a tool: refuse it without ``--allow-write`` when it writes; report its errors.

    Args:
        settings: whose ``allow_write`` decides.
        writes: whether the tool changes the world (starts jobs, registers, comments, commits).

    Returns:
        A decorator keeping the tool's signature (the SDK reads it through ``__wrapped__``).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if writes and not settings.allow_write:
                raise tool_error(
                    WriteNotAllowedError(
                        f"{fn.__name__} changes the world and this server is read-only; "
                        "start it with --allow-write (MLOPS_ALLOW_WRITE=1)"
                    )
                )
            try:
                return fn(*args, **kwargs)
            except MlopsError as err:
                logger.info("tool %s failed: %s", fn.__name__, err)
                raise tool_error(err) from err
            except Exception as err:
                logger.exception("tool %s raised", fn.__name__)
                raise tool_error(err) from err

        return wrapper  # type: ignore[return-value]

    return decorate
