"""Agent of the Notify and NotifyFailure states: the issue comment and the notification.

Result: ``$.notification``. The comment is posted once per run, attempt and status (an
idempotency key), so a retried or resumed state never comments twice.
"""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, report_status, step
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.core.rendering.comments import (
    attempts_exhausted_comment,
    record_link,
    run_comment,
    timeout_comment,
)
from mcp_server.core.workflow.records import build_record, current_record, now_iso, run_status
from mcp_server.core.workflow.state import AgentEvent, NotificationStep, WorkflowState
from mcp_server.errors import NotFoundError


def closing_comment(state: WorkflowState, record: HistoryRecord, commit: HistoryCommit | None) -> str:
    """The comment that ends a run: its result, the wait's timeout, or every exhausted attempt."""
    body = run_comment(record, commit)
    if state.error is not None and state.error.Error == "OperatorTimedOut":
        return timeout_comment("") + "\n\n" + body
    verdict = state.verdict
    if record.status == "rejected" and verdict is not None and verdict.verdict == "fail" and state.attempts:
        return (
            attempts_exhausted_comment([*state.attempts, record])
            + f"\n\n- History record: {record_link(commit)}"
        )
    return body


def forget_waiting_run(run_id: str) -> None:
    """A run that ends (after a timeout, a failure, a decision) no longer waits for anyone."""
    try:
        call_tool("complete_waiting_run", {"run_id": run_id})
    except NotFoundError:
        pass


def close_run(state: WorkflowState, record: HistoryRecord, commit: HistoryCommit | None) -> NotificationStep:
    """Post the closing comment, mark the status comment final, and publish the notification.

    Args:
        state: the workflow state.
        record: the attempt's record.
        commit: where it was committed (None when it could not be).

    Returns:
        Where the comment went and the notification's message id.
    """
    forget_waiting_run(state.run_id)
    body = closing_comment(state, record, commit)
    key = f"{state.run_id}:a{record.attempt}:{record.status}"
    if state.operator is not None and state.operator.action == "deploy":  # a /deploy's own ending
        key += f":deploy:{state.operator.comment_id or state.operator.at}"
    comment = call_tool(
        "post_comment", {"issue_number": record.issue.number, "body": body, "idempotency_key": key}
    )
    report_status(state, f"finished: {record.status.replace('_', ' ')}", final=True)
    subject = f"[issue-mlops] issue #{record.issue.number}: run {record.status}"
    attributes = {"issue": str(record.issue.number), "status": record.status, "execution": state.run_id}
    receipt = call_tool("notify", {"subject": subject[:100], "message": body, "attributes": attributes})
    return NotificationStep(
        comment_id=comment["id"], comment_url=comment.get("url", ""), message_id=receipt["message_id"]
    )


def notify(event: AgentEvent) -> NotificationStep:
    """Close the run on its issue: the recorded attempt, or (when recording failed) the state as it is."""
    state = event.state
    record = current_record(state)
    commit = None
    if record is not None and state.history is not None and state.history.status == record.status:
        commit = HistoryCommit.model_validate(
            state.history.model_dump(include=set(HistoryCommit.model_fields))
        )
    if record is None or (state.error is not None and record.status != "failed"):
        record, commit = build_record(state, now_iso(), run_status(state, event.state_name)), None
    return close_run(state, record, commit)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the NotificationStep as JSON."""
    return step(event, notify)
