"""What every agent shares: settings, the logger, the MCP client call, and the step wrapper.

Agents are thin: a handler parses the state, calls MCP tools through ``call_tool`` and returns
the state with its own result added under one key. Errors keep their class name across the
MCP boundary (``[ClassName] message`` in the tool result) so the ASL's Retry/Catch can match them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from aws_lambda_powertools import Logger
from mcp import Client

from mcp_server.errors import ERRORS, MlopsError, TransientError

logger = Logger(service="issue-mlops")
logging.getLogger("httpx").setLevel(logging.WARNING)


class ToolFailed(MlopsError):
    """An MCP tool failed with an error class this agent does not know."""


@dataclass(frozen=True)
class AgentSettings:
    """Where the agents find the MCP server, and how long a tool call may take.

    Attributes:
        mcp_url: the server's streamable HTTP URL (``MLOPS_MCP_URL``).
        tool_timeout_s: seconds to wait for one tool result.
    """

    mcp_url: str
    tool_timeout_s: float = 600.0

    @classmethod
    def from_env(cls) -> AgentSettings:
        """Read ``MLOPS_MCP_URL`` (default http://127.0.0.1:8765/mcp) and ``MLOPS_TOOL_TIMEOUT_S``."""
        return cls(
            mcp_url=os.environ.get("MLOPS_MCP_URL", "http://127.0.0.1:8765/mcp"),
            tool_timeout_s=float(os.environ.get("MLOPS_TOOL_TIMEOUT_S", "600")),
        )


@functools.cache
def settings() -> AgentSettings:
    """The agents' settings, read from the environment once per process (at first use)."""
    return AgentSettings.from_env()


_ERROR_PREFIX = re.compile(
    r"^(?:Error executing tool \w+: )?\[(?P<cls>[A-Za-z_][A-Za-z0-9_]*)\] (?P<msg>.*)$", re.DOTALL
)


def error_from_tool(text: str) -> MlopsError:
    """Rebuild the exception a tool reported as ``[ClassName] message``.

    Returns:
        An instance of the named ``mcp_server.errors`` class, else ``ToolFailed``.
    """
    match = _ERROR_PREFIX.match(text.strip())
    if not match:
        return ToolFailed(text)
    cls = ERRORS.get(match["cls"], ToolFailed)
    return cls(match["msg"] if cls is not ToolFailed else f"{match['cls']}: {match['msg']}")


def call_tool(name: str, arguments: dict[str, Any]) -> Any:
    """Call one MCP tool on the configured server and return its structured result.

    Args:
        name: the tool name (verb_noun).
        arguments: JSON-compatible arguments.

    Returns:
        The tool's structured content (a dict; a list result is unwrapped from ``result``).

    Raises:
        TransientError: the server could not be reached.
        MlopsError: the tool reported an error (same class as on the server).
    """
    config = settings()

    async def run() -> Any:
        async with Client(config.mcp_url, read_timeout_seconds=config.tool_timeout_s) as client:
            return await client.call_tool(name, arguments)

    try:
        result = asyncio.run(run())
    except (httpx.TransportError, ConnectionError, OSError) as err:
        raise TransientError(f"MCP server at {config.mcp_url} unreachable calling {name}: {err}") from err
    except Exception as err:  # the SDK wraps transport failures in exception groups
        if _is_transport_failure(err):
            raise TransientError(f"MCP server at {config.mcp_url} unreachable calling {name}: {err}") from err
        raise
    if result.is_error:
        text = " ".join(getattr(part, "text", "") for part in result.content)
        raise error_from_tool(text)
    content = result.structured_content
    if isinstance(content, dict) and set(content) == {"result"}:
        return content["result"]
    return content


def _is_transport_failure(err: BaseException) -> bool:
    if isinstance(err, httpx.TransportError | ConnectionError):
        return True
    return any(_is_transport_failure(e) for e in getattr(err, "exceptions", ()))


def step(event: dict[str, Any], key: str, work: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Run one state's work and return the state's output.

    Args:
        event: the Lambda event: ``state`` (the workflow state), ``execution`` (name),
            ``execution_start`` and ``state_entered`` (ISO times) and ``state_name``.
        key: where the result goes in the state (``dataset``, ``training``, ...).
        work: a function of the state returning a pydantic model or JSON-compatible value.

    Returns:
        The state with ``key`` set to the result and ``timings[state_name]`` increased by this
        step's wall time in seconds.
    """
    state = dict(event["state"])
    state["execution"] = event.get("execution")
    state.setdefault("execution_start", event.get("execution_start"))
    # A run keeps its first execution's name and start across /retrain and restarts.
    state.setdefault("run_id", event.get("execution"))
    state.setdefault("run_started_at", event.get("execution_start"))
    state["state_entered"] = event.get("state_entered")
    state["state_name"] = event.get("state_name")
    issue = (state.get("issue") or {}).get("number")
    logger.append_keys(issue=issue, execution=event.get("execution"), state=event.get("state_name"))
    started = time.perf_counter()
    result = work(state)
    elapsed = time.perf_counter() - started
    state[key] = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
    timings = dict(state.get("timings") or {})
    name = event.get("state_name") or key
    timings[name] = round(timings.get(name, 0.0) + elapsed, 3)
    state["timings"] = timings
    logger.info("state done", extra={"seconds": round(elapsed, 3)})
    return state


def report_status(state: dict[str, Any], label: str, waiting: bool = False) -> None:
    """Edit the run's one status comment in place: state, attempt, elapsed time.

    Args:
        state: the workflow state (issue, run_id, attempt, spec, run_started_at).
        label: what the run is doing, e.g. "training" or "waiting for the operator".
        waiting: whether the run waits for a reply on the issue.

    A failure to post or edit the comment is logged, never raised: it must not fail the run.
    """
    from datetime import UTC, datetime

    from mcp_server.core.rendering.comments import status_comment

    now = datetime.now(UTC)
    started = state.get("run_started_at")
    elapsed = (now - datetime.fromisoformat(started)).total_seconds() if started else 0.0
    retraining = (state.get("spec") or {}).get("retraining") or {}
    body = status_comment(
        execution=str(state.get("run_id") or state.get("execution")),
        state=label,
        attempt=int(state.get("attempt", 1)),
        max_attempts=int(retraining.get("max_attempts", 1)),
        elapsed_s=max(0.0, elapsed),
        issue_number=int(state["issue"]["number"]),
        updated_at=now.isoformat(timespec="seconds"),
        waiting=waiting,
    )
    try:
        call_tool(
            "upsert_comment",
            {
                "issue_number": state["issue"]["number"],
                "key": f"status:{state.get('run_id')}",
                "body": body,
            },
        )
    except MlopsError as err:  # the status comment is a courtesy: it never fails the run
        logger.warning("status comment not updated", extra={"error": str(err)})
