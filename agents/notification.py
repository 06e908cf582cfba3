"""Agent of the Notify and NotifyFailure states: the issue comment and the notification."""

from __future__ import annotations

from typing import Any

from agents.history_writer import build_record
from agents.runtime import call_tool, report_status, step
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.core.rendering.comments import (
    attempts_exhausted_comment,
    record_link,
    run_comment,
    timeout_comment,
)
from mcp_server.errors import NotFoundError


def closing_comment(state: dict[str, Any], record: HistoryRecord, commit: HistoryCommit | None) -> str:
    """The comment that ends a run: its result, the wait's timeout, or every exhausted attempt."""
    body = run_comment(record, commit)
    if (state.get("error") or {}).get("Error") == "OperatorTimedOut":
        waiting = state.get("waiting") or {}
        return timeout_comment(waiting.get("timeout_at", "")) + "\n\n" + body
    verdict = state.get("verdict") or {}
    if record.status == "rejected" and verdict.get("verdict") == "fail" and state.get("attempts"):
        previous = [HistoryRecord.model_validate(r) for r in state["attempts"]]
        return (
            attempts_exhausted_comment([*previous, record]) + f"\n\n- History record: {record_link(commit)}"
        )
    return body


def forget_waiting_run(state: dict[str, Any]) -> None:
    """A run that ends (after a timeout, a failure, a decision) no longer waits for anyone."""
    try:
        call_tool("complete_waiting_run", {"run_id": state["run_id"]})
    except NotFoundError:
        pass


def notify(state: dict[str, Any]) -> dict[str, Any]:
    """Post the run's closing comment (once per run and status) and publish the notification."""
    history = state.get("history") or {}
    record = HistoryRecord.model_validate(history["record"]) if "record" in history else build_record(state)
    commit = (
        HistoryCommit.model_validate({k: history[k] for k in HistoryCommit.model_fields})
        if "commit_sha" in history
        else None
    )
    forget_waiting_run(state)
    body = closing_comment(state, record, commit)
    key = f"{state['run_id']}:a{record.attempt}:{record.status}"
    comment = call_tool(
        "post_comment", {"issue_number": record.issue.number, "body": body, "idempotency_key": key}
    )
    report_status(state, f"finished: {record.status.replace('_', ' ')}")
    subject = f"[issue-mlops] issue #{record.issue.number}: run {record.status}"
    attributes = {
        "issue": str(record.issue.number),
        "status": record.status,
        "execution": str(state["run_id"]),
    }
    receipt = call_tool("notify", {"subject": subject[:100], "message": body, "attributes": attributes})
    return {
        "comment_id": comment["id"],
        "comment_url": comment.get("url", ""),
        "body": body,
        "message_id": receipt["message_id"],
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``notification`` (comment id and body, message id) added."""
    return step(event, "notification", notify)
