"""What every agent shares: settings, the logger, the MCP client call, and the step wrapper.

Agents are thin: a handler parses the state, calls MCP tools through ``call_tool`` and returns
its own result, which the ASL stores under the Task's ``ResultPath``. Errors keep their class
across the MCP boundary as structured data (``errors.ErrorPayload``), so the ASL's Retry/Catch
match the same class names the server raised.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from agents import mcp_client
from mcp_server.core.workflow.state import AgentEvent, WorkflowState
from mcp_server.errors import (
    InvalidArgumentError,
    MlopsError,
    ToolFailed,
    TransientError,
    from_payload,
)

logger = Logger(service="issue-mlops")
logging.getLogger("httpx").setLevel(logging.WARNING)


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


def error_from_result(result: Any, tool: str) -> MlopsError:
    """Rebuild the exception a failed tool result reports.

    The project's tools put ``{"error": ErrorPayload}`` in the structured content; the SDK's
    own failures (arguments that do not fit the schema, an unknown tool) carry text only.

    Returns:
        The named ``mcp_server.errors`` class; ``InvalidArgumentError`` for rejected arguments;
        else ``ToolFailed`` with the text.
    """
    content = result.structured_content
    if isinstance(content, dict) and isinstance(content.get("error"), dict):
        try:
            return from_payload(content["error"])
        except ValueError:
            pass
    text = " ".join(getattr(part, "text", "") for part in result.content)[:4000]
    if "validation error" in text.lower():
        return InvalidArgumentError(f"{tool} refused its arguments: {text}")
    return ToolFailed(f"{tool}: {text}")


def call_tool(name: str, arguments: dict[str, Any]) -> Any:
    """Call one MCP tool on the configured server and return its structured result.

    The call goes through the process's open session to the server (``agents.mcp_client``),
    which is opened at the first call and kept for the next ones.

    Args:
        name: the tool name (verb_noun).
        arguments: JSON-compatible arguments.

    Returns:
        The tool's structured content (a dict; a list result is unwrapped from ``result``).

    Raises:
        TransientError: the server could not be reached (the session is dropped; the next call
            opens a new one).
        MlopsError: the tool reported an error (same class as on the server).
    """
    config = settings()
    session = mcp_client.session_for(config.mcp_url, config.tool_timeout_s)
    try:
        result = session.call_tool(name, arguments)
    except Exception as err:  # the SDK wraps transport failures in exception groups
        if not mcp_client.transport_failure(err):
            raise
        mcp_client.drop(session)
        raise TransientError(f"MCP server at {config.mcp_url} unreachable calling {name}: {err}") from err
    if result.is_error:
        raise error_from_result(result, name)
    content = result.structured_content
    if isinstance(content, dict) and set(content) == {"result"}:
        return content["result"]
    return content


def step(event: dict[str, Any], work: Callable[[AgentEvent], BaseModel]) -> dict[str, Any]:
    """Run one Task state's work on the typed state and return its result as JSON.

    Args:
        event: the Lambda event (``AgentEvent``: state, execution, state_name, state_entered).
        work: a function of the parsed event returning the state's result model.

    Returns:
        The result, which the ASL stores under the Task's ``ResultPath``.

    Raises:
        pydantic.ValidationError: the event is not a workflow state (a bug in the ASL or a
            previous agent; the Catch reports it).
    """
    parsed = AgentEvent.model_validate(event)
    logger.append_keys(issue=parsed.state.issue.number, execution=parsed.execution, state=parsed.state_name)
    started = time.perf_counter()
    result = work(parsed)
    logger.info("state done", extra={"seconds": round(time.perf_counter() - started, 3)})
    return result.model_dump(mode="json")


def report_status(state: WorkflowState, label: str, waiting: bool = False, final: bool = False) -> None:
    """Edit the run's one status comment in place: state, attempt, elapsed time.

    Args:
        state: the workflow state.
        label: what the run is doing, e.g. "training" or "waiting for the operator".
        waiting: whether the run waits for a reply on the issue.
        final: whether the run has ended (the comment then shows no hourglass).

    A failure to post or edit the comment is logged, never raised: it must not fail the run.
    """
    from mcp_server.core.rendering.comments import status_comment

    now = datetime.now(UTC)
    try:
        elapsed = (now - datetime.fromisoformat(state.run_started_at)).total_seconds()
    except ValueError:
        elapsed = 0.0
    retraining = state.spec.get("retraining") or {}
    body = status_comment(
        execution=state.run_id,
        state=label,
        attempt=state.attempt,
        max_attempts=int(retraining.get("max_attempts", 1)),
        elapsed_s=max(0.0, elapsed),
        issue_number=state.issue.number,
        updated_at=now.isoformat(timespec="seconds"),
        waiting=waiting,
        final=final,
    )
    try:
        call_tool(
            "upsert_comment",
            {"issue_number": state.issue.number, "key": f"status:{state.run_id}", "body": body},
        )
    except MlopsError as err:  # the status comment is a courtesy: it never fails the run
        logger.warning("status comment not updated", extra={"error": str(err)})
