"""Agent of the Notify and NotifyFailure states: the issue comment and the notification."""

from __future__ import annotations

from typing import Any

from agents.history_writer import build_record
from agents.runtime import call_tool, step
from mcp_server.core.comments import run_comment
from mcp_server.core.models import HistoryCommit, HistoryRecord


def notify(state: dict[str, Any]) -> dict[str, Any]:
    """Post the run's comment (once per execution and state) and publish the notification."""
    history = state.get("history") or {}
    record = HistoryRecord.model_validate(history["record"]) if "record" in history else build_record(state)
    commit = (
        HistoryCommit.model_validate({k: history[k] for k in HistoryCommit.model_fields})
        if "commit_sha" in history
        else None
    )
    body = run_comment(record, commit)
    comment = call_tool(
        "post_comment",
        {
            "issue_number": record.issue.number,
            "body": body,
            "idempotency_key": f"{state['execution']}:{record.status}",
        },
    )
    subject = f"[issue-mlops] issue #{record.issue.number}: run {record.status}"
    receipt = call_tool(
        "notify",
        {
            "subject": subject[:100],
            "message": body,
            "attributes": {
                "issue": str(record.issue.number),
                "status": record.status,
                "execution": str(state["execution"]),
            },
        },
    )
    return {
        "comment_id": comment["id"],
        "comment_url": comment.get("url", ""),
        "body": body,
        "message_id": receipt["message_id"],
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``notification`` (comment id and body, message id) added."""
    return step(event, "notification", notify)
