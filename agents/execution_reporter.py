"""The execution reporter: every execution that ends without reporting itself is reported here.

The workflow comments and records its own endings (see ``core.workflow.ending``). An execution
can also end where no state of it can report: an error ``States.ALL`` does not catch
(``States.DataLimitExceeded``, ``States.Runtime`` outside a Task), its own timeout, a stop, a
failure of ``NotifyFailure`` itself, or a runtime that died and could not resume it. This agent
then commits a failed record and posts the failure comment naming the state, as
``NotifyFailure`` would have (same record id and comment key, so nothing is posted twice).

On AWS it is invoked by an EventBridge rule on "Step Functions Execution Status Change"
(FAILED, TIMED_OUT, ABORTED), with the last state read from the execution's history; locally by
the runtime when its recorder sees an execution end. The event is ``ExecutionEnded``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ValidationError

from agents.history_writer import commit_record
from agents.notification import close_run
from agents.runtime import call_tool, logger
from mcp_server.core.rendering.comments import execution_ended_comment
from mcp_server.core.workflow.ending import ending_error, reported_by_workflow
from mcp_server.core.workflow.records import build_record, now_iso
from mcp_server.core.workflow.state import WorkflowState
from mcp_server.errors import MlopsError


class ExecutionEnded(BaseModel):
    """An ended execution, as the reporter needs it.

    Attributes:
        name: the execution name.
        status: SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
        error: the execution's error name (FAILED), if any.
        cause: its cause, if any.
        input: the execution input (any JSON: it may be the reason it failed).
        last_state: the state it was in when it ended.
        last_data: the richest workflow state known at the end (the last state output).
    """

    name: str
    status: str
    error: str | None = None
    cause: str | None = None
    input: Any = None
    last_state: str | None = None
    last_data: Any = None


def report(event: ExecutionEnded) -> dict[str, Any]:
    """Comment on and record an ended execution, unless the workflow already did.

    Returns:
        ``{"reported": False}`` when nothing was needed; else ``{"reported": True, "issue",
        "record"}`` (record None when the state was too broken to record), or
        ``{"reported": False, "reason"}`` when not even the issue is known.
    """
    if reported_by_workflow(event.status, event.error):
        return {"reported": False}
    error = ending_error(event.status, event.error, event.cause, event.last_state)
    for data in (event.last_data, event.input):
        try:
            state = WorkflowState.model_validate(data)
        except ValidationError:
            continue
        # an error a Catch already put in the state is the run's cause (its report failed later)
        state = state.model_copy(update={"error": state.error or error})
        record = build_record(state, now_iso(), "failed")
        commit = None
        try:
            commit = commit_record(record, state.evaluation.plots if state.evaluation else {})
        except MlopsError as err:  # the comment says so; it must still be posted
            logger.warning("failure record not committed", extra={"error": str(err)})
        close_run(state, record, commit)
        return {"reported": True, "issue": state.issue.number, "record": record.record_id}
    number = _issue_number(event.last_data) or _issue_number(event.input)
    if number is None:
        logger.error("an execution ended without an issue to report to", extra={"execution": event.name})
        return {"reported": False, "reason": "no issue number in the execution's state"}
    body = execution_ended_comment(event.name, error)
    call_tool(
        "post_comment", {"issue_number": number, "body": body, "idempotency_key": f"{event.name}:ended"}
    )
    return {"reported": True, "issue": number, "record": None}


def _issue_number(data: Any) -> int | None:
    issue = data.get("issue") if isinstance(data, dict) else None
    number = issue.get("number") if isinstance(issue, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) and number >= 1 else None


#: The EventBridge detail type Step Functions sends when an execution changes status.
STATUS_CHANGE = "Step Functions Execution Status Change"


def from_status_change(event: dict[str, Any], sfn_client: Any) -> ExecutionEnded:
    """Turn EventBridge's execution status change into an ``ExecutionEnded``.

    The event carries the execution's name, status, error, cause and input (a JSON string); the
    state it ended in and the last state output are read from its history, newest event first
    (``GetExecutionHistory``: ``stateEnteredEventDetails.name``, ``stateExitedEventDetails.output``;
    the whole history is read, an ending is rare).

    Raises:
        KeyError: the event has no ``detail.executionArn`` or ``detail.name``.
        botocore.exceptions.ClientError: the history cannot be read.
    """
    detail = event["detail"]
    last_state: str | None = None
    last_data: Any = None
    pages = sfn_client.get_paginator("get_execution_history").paginate(
        executionArn=detail["executionArn"], reverseOrder=True
    )
    events = [entry for page in pages for entry in page["events"]]
    # newest first by event id: moto's history ignores reverseOrder
    for item in sorted(events, key=lambda entry: int(entry.get("id", 0)), reverse=True):
        entered = item.get("stateEnteredEventDetails")
        if last_state is None and entered:
            last_state = entered.get("name")
        exited = item.get("stateExitedEventDetails")
        if last_data is None and exited:
            output = _json(exited.get("output"))
            last_data = output if isinstance(output, dict) else None
        if last_state is not None and last_data is not None:
            break
    return ExecutionEnded(
        name=detail["name"],
        status=detail["status"],
        error=detail.get("error"),
        cause=detail.get("cause"),
        input=_json(detail.get("input")),
        last_state=last_state,
        last_data=last_data,
    )


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: an ``ExecutionEnded`` (locally) or EventBridge's status change (AWS) in.

    Returns:
        What was reported (see ``report``).
    """
    if event.get("detail-type") == STATUS_CHANGE:
        import boto3

        sfn = boto3.client("stepfunctions", endpoint_url=os.environ.get("MLOPS_SFN_ENDPOINT_URL") or None)
        return report(from_status_change(event, sfn))
    return report(ExecutionEnded.model_validate(event))
