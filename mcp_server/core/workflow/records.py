"""From a workflow state to its history record, and from a waiting run to its next attempt. Pure.

``build_record`` is used by the recording states, by the closing comment, and by the report of
an execution that ended outside the workflow's own failure path; all of them therefore describe
a run the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mcp_server.core.models import HistoryRecord
from mcp_server.core.workflow.state import (
    CaughtError,
    OperatorDecision,
    RunStatus,
    WorkflowInput,
    WorkflowState,
)


def run_status(state: WorkflowState, recording_state: str | None) -> RunStatus:
    """Return the status of the attempt being recorded.

    Args:
        state: the workflow state.
        recording_state: the state that records (``RecordAttempt`` records a wait).

    Returns:
        ``failed`` when a state caught an error; ``cancelled`` after ``/cancel``; ``succeeded``
        when a model was registered (it passed, or an operator approved it);
        ``awaiting_operator`` when recorded before asking the operator (``RecordAttempt``);
        else ``rejected`` (the judge's verdict was fail, or the wait timed out).
    """
    if state.error is not None:
        return "failed"
    if state.operator is not None and state.operator.action == "cancel":
        return "cancelled"
    if state.model is not None:
        return "succeeded"
    if recording_state == "RecordAttempt":
        return "awaiting_operator"
    return "rejected"


def error_of(error: CaughtError | None) -> dict[str, str] | None:
    """The caught error as ``{Error, Cause[, State]}``; a Lambda error's JSON cause becomes its message.

    Step Functions puts a Lambda function error's payload (``errorType``, ``errorMessage``,
    ``stackTrace``) as JSON in ``Cause``; the record keeps ``errorType: errorMessage``.
    """
    if error is None:
        return None
    cause = error.Cause or ""
    try:
        payload = json.loads(cause)
        if isinstance(payload, dict) and "errorMessage" in payload:
            cause = f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    except ValueError:
        pass
    found = {"Error": error.Error, "Cause": cause}
    if error.State:
        found["State"] = error.State
    return found


def timings(state: WorkflowState, finished_at: str) -> dict[str, float]:
    """The jobs' own run times and the run's wall time so far, in seconds.

    Returns:
        ``training job`` (or ``hyperparameter tuning job``: the whole search), ``evaluation job``
        when they ran, and ``run`` from ``run_started_at`` to ``finished_at``.
    """
    found: dict[str, float] = {}
    training = state.training
    if training is not None:
        tuning = training.tuning
        duration = tuning.duration_s if tuning is not None else training.duration_s
        if duration is not None:
            found["hyperparameter tuning job" if tuning else "training job"] = round(float(duration), 3)
    if state.evaluation is not None:
        found["evaluation job"] = round(state.evaluation.duration_s, 3)
    try:
        elapsed = datetime.fromisoformat(finished_at) - datetime.fromisoformat(state.run_started_at)
        found["run"] = round(max(0.0, elapsed.total_seconds()), 3)
    except ValueError:
        pass
    return found


def build_record(state: WorkflowState, finished_at: str, status: RunStatus) -> HistoryRecord:
    """Assemble the record of the current attempt.

    Args:
        state: the workflow state.
        finished_at: ISO-8601 time the record is taken at (a retried recording state passes the
            same time, so a retry makes no new commit).
        status: the attempt's status (see ``run_status``).

    Returns:
        The record, ``record_id`` ``{run_id}-a{attempt}``.
    """
    return HistoryRecord(
        record_id=f"{state.run_id}-a{state.attempt}",
        issue=state.issue,
        status=status,
        attempt=state.attempt,
        spec=state.spec,
        spec_hash=state.spec_hash,
        dataset=state.dataset,
        training=state.training,
        evaluation=state.evaluation,
        thresholds=(state.spec.get("evaluation") or {}).get("thresholds", {}),
        verdict=state.verdict.model_dump(mode="json") if state.verdict else None,
        model=state.model,
        error=error_of(state.error),
        operator=state.operator.model_dump(mode="json", exclude_none=True) if state.operator else None,
        timings=timings(state, finished_at),
        deployment=state.deployment.model_dump(mode="json") if state.deployment else None,
        trigger=state.trigger.model_dump(mode="json") if state.trigger.kind != "issue" else None,
        started_at=state.run_started_at,
        finished_at=finished_at,
    )


def current_record(state: WorkflowState) -> HistoryRecord | None:
    """The record the last recording state committed, rebuilt from the state (None before one)."""
    if state.history is None:
        return None
    return build_record(state, state.history.finished_at, state.history.status)


def next_attempt(
    state: WorkflowState, spec: dict[str, Any], spec_hash: str, decision: OperatorDecision
) -> WorkflowInput:
    """The input of the next attempt after ``/retrain``: the same run, a new spec, no results.

    Args:
        state: the waiting run's state (this attempt recorded by RecordAttempt).
        spec: the patched and re-validated spec (JSON).
        spec_hash: its hash.
        decision: the operator's ``/retrain`` (with patch and diff).

    Returns:
        The input with ``attempt`` + 1 and this attempt's record appended to ``attempts``.
    """
    record = current_record(state)
    return WorkflowInput(
        issue=state.issue,
        spec=spec,
        spec_hash=spec_hash,
        attempt=state.attempt + 1,
        run_id=state.run_id,
        run_started_at=state.run_started_at,
        trigger=state.trigger,
        config=state.config,
        attempts=[*state.attempts, *([record] if record else [])],
        operator=decision,
    )


def now_iso() -> str:
    """The current time, ISO-8601 UTC with seconds (what records and decisions carry)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
