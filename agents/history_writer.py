"""Agent of the RecordHistory and RecordFailure states: commit the run's Markdown record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from agents.runtime import call_tool, step
from mcp_server.core.models import HistoryRecord, IssueRef


def run_status(state: dict[str, Any]) -> str:
    """Return the status of the attempt being recorded.

    Returns:
        ``failed`` when a state caught an error; ``cancelled`` after ``/cancel``; ``succeeded``
        when a model was registered (it passed, or an operator approved it);
        ``awaiting_operator`` when recorded before asking the operator (``RecordAttempt``);
        else ``rejected`` (the judge's verdict was fail).
    """
    if state.get("error"):
        return "failed"
    if (state.get("operator") or {}).get("action") == "cancel":
        return "cancelled"
    if state.get("model"):
        return "succeeded"
    if state.get("state_name") == "RecordAttempt":
        return "awaiting_operator"
    return "rejected"


def error_of(state: dict[str, Any]) -> dict[str, str] | None:
    """The caught error as ``{Error, Cause}``; a Lambda error's JSON cause is reduced to its message."""
    error = state.get("error")
    if not error:
        return None
    cause = error.get("Cause") or ""
    try:
        payload = json.loads(cause)
        if isinstance(payload, dict) and "errorMessage" in payload:
            cause = f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    except ValueError:
        pass
    return {"Error": str(error.get("Error", "Error")), "Cause": str(cause)}


def _timings(state: dict[str, Any]) -> dict[str, float]:
    """Seconds per state's agent, plus the training job's own run time (waits included).

    For a hyperparameter tuning job it is the whole search's wall time, not the best trial's.
    """
    timings = dict(state.get("timings") or {})
    training = state.get("training") or {}
    tuning = training.get("tuning")
    duration = (tuning or training).get("duration_s")
    if duration is not None:
        timings["hyperparameter tuning job" if tuning else "training job"] = round(float(duration), 3)
    return timings


def build_record(state: dict[str, Any]) -> HistoryRecord:
    """Assemble the run's history record from the workflow state."""
    attempt = int(state.get("attempt", 1))
    return HistoryRecord(
        record_id=f"{state['run_id']}-a{attempt}",
        issue=IssueRef.model_validate(state["issue"]),
        status=run_status(state),  # type: ignore[arg-type]
        attempt=attempt,
        spec=state["spec"],
        spec_hash=state["spec_hash"],
        dataset=state.get("dataset"),
        training=state.get("training"),
        evaluation=state.get("evaluation"),
        thresholds=(state["spec"].get("evaluation") or {}).get("thresholds", {}),
        verdict=state.get("verdict"),
        model=state.get("model"),
        error=error_of(state),
        operator=state.get("operator"),
        timings=_timings(state),
        started_at=state.get("execution_start") or datetime.now(UTC).isoformat(),
        # The recording state's entry time: the same on a retry, so a retry makes no new commit.
        finished_at=state.get("state_entered") or datetime.now(UTC).isoformat(),
    )


def record(state: dict[str, Any]) -> dict[str, Any]:
    """Commit the record with the evaluation's plots beside it; returns the HistoryCommit."""
    history_record = build_record(state)
    plots = (state.get("evaluation") or {}).get("plots", {})
    files = {f"{name}.png": uri for name, uri in plots.items()}
    commit = call_tool(
        "record_training_history",
        {
            "record": history_record.model_dump(mode="json"),
            "files": files,
        },
    )
    return {**commit, "status": history_record.status, "record": history_record.model_dump(mode="json")}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the state with ``history`` (commit, status and the record) added."""
    return step(event, "history", record)
