"""Agent of the RecordHistory, RecordAttempt and RecordFailure states (result: ``$.history``).

Commits the run's Markdown record, with the evaluation's plots beside it. The record is taken at
the recording state's entry time, which a retry of the state keeps, so a retry makes no second
commit.
"""

from __future__ import annotations

from typing import Any

from agents.runtime import call_tool, step
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.core.rendering.deployment_text import package_files
from mcp_server.core.rendering.history_sections import BASELINE_FILE
from mcp_server.core.workflow.records import build_record, run_status
from mcp_server.core.workflow.state import AgentEvent, HistoryStep


def commit_record(record: HistoryRecord, plots: dict[str, str]) -> HistoryCommit:
    """Commit ``record`` with its plots (name -> URI), its drift baseline and its packaging beside it.

    Every file is committed under ``assets/{record stem}/`` and linked relative to the record,
    so the links work wherever the repository is read (GitHub, a clone).
    """
    files = {f"{name}.png": uri for name, uri in plots.items()}
    if record.evaluation is not None and record.evaluation.baseline_uri:
        files[BASELINE_FILE] = record.evaluation.baseline_uri
    files.update(package_files(record))
    commit = call_tool("record_training_history", {"record": record.model_dump(mode="json"), "files": files})
    return HistoryCommit.model_validate(commit)


def record(event: AgentEvent) -> HistoryStep:
    """Build this attempt's record from the state, commit it, and say where it landed."""
    state = event.state
    status = run_status(state, event.state_name)
    history_record = build_record(state, event.state_entered, status)
    plots = state.evaluation.plots if state.evaluation else {}
    commit = commit_record(history_record, plots)
    return HistoryStep(
        **commit.model_dump(),
        status=status,
        record_id=history_record.record_id,
        finished_at=history_record.finished_at,
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: the HistoryStep (commit, status, record id) as JSON."""
    return step(event, record)
