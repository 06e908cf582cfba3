"""Agent of the AskOperator state: explain the miss on the issue, then wait for a reply.

The state's task waits on a task token (``.waitForTaskToken``). This agent posts the comment
with the metrics, the judge's suggestions and how to reply, and records the waiting run with
its token through ``await_operator``; the webhook handler resumes the workflow when an
authorised person answers ``/retrain``, ``/approve`` or ``/cancel``. A run resumed after a
restart comes back here: it keeps its first wait's start and deadline and posts nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agents.runtime import call_tool, logger, report_status
from mcp_server.core.models import WaitingRun
from mcp_server.core.rendering.comments import retry_comment
from mcp_server.core.workflow.records import current_record
from mcp_server.core.workflow.state import AgentEvent, WorkflowState
from mcp_server.errors import MlopsError

DEFAULT_TIMEOUT_S = 7 * 24 * 3600


def wait_window(state: WorkflowState, previous: dict[str, Any] | None) -> tuple[str, str]:
    """Return (waiting_since, timeout_at), ISO-8601 UTC: the first wait's, or new ones from now."""
    if previous is not None:
        return previous["waiting_since"], previous["timeout_at"]
    now = datetime.now(UTC)
    seconds = state.config.operator_timeout_s
    return now.isoformat(timespec="seconds"), (now + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def ask_operator(raw_event: dict[str, Any]) -> WaitingRun:
    """Post the operator's comment once per attempt and record the run as waiting.

    Returns:
        The waiting run as stored.

    Raises:
        MlopsError: the state has no recorded attempt or verdict (a bug upstream), or a tool failed.
    """
    event = AgentEvent.model_validate(raw_event)
    state = event.state.model_copy(update={"resume": None})
    run_id, issue = state.run_id, state.issue.number
    logger.append_keys(issue=issue, execution=event.execution, state=event.state_name)
    record, verdict = current_record(state), state.verdict
    if record is None or verdict is None or not event.task_token or not event.execution_arn:
        raise MlopsError("AskOperator needs the recorded attempt, the verdict and the task token")
    earlier = [r for r in call_tool("list_waiting_runs", {"issue_number": issue}) if r["run_id"] == run_id]
    previous = earlier[0] if earlier else None
    waiting_since, timeout_at = wait_window(state, previous)
    call_tool(
        "post_comment",
        {
            "issue_number": issue,
            "body": retry_comment(record, verdict, timeout_at),
            "idempotency_key": f"{run_id}:ask:a{record.attempt}",
        },
    )
    resumed = previous is not None and previous["execution_arn"] != event.execution_arn
    run = WaitingRun(
        run_id=run_id,
        issue_number=issue,
        execution_arn=event.execution_arn,
        task_token=event.task_token,
        attempt=record.attempt,
        max_attempts=verdict.max_attempts,
        state=state.model_dump(mode="json", exclude_none=True),
        waiting_since=waiting_since,
        timeout_at=timeout_at,
        resumes=(previous or {}).get("resumes", 0) + (1 if resumed else 0),
    )
    stored = WaitingRun.model_validate(call_tool("await_operator", {"run": run.model_dump(mode="json")}))
    report_status(state, "waiting for a reply on the issue", waiting=True)
    logger.info("waiting for the operator", extra={"timeout_at": timeout_at})
    return stored


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler of a ``.waitForTaskToken`` task: its return value is not the state's output."""
    run = ask_operator(event)
    return {"waiting": True, "run_id": run.run_id, "timeout_at": run.timeout_at}
