"""Execution records: each execution's input, states, output and status, written as it runs.

``ExecutionRecorder`` follows executions through ``GetExecutionHistory`` and rewrites
``{home}/executions/{name}.json`` (atomically) whenever a state enters or exits, so the record
survives the process. ``summarise_history`` is the pure part: history events in, record out.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_server.backends.local.files import write_json_atomic

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _seconds(start: Any, end: Any) -> float:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return round((end - start).total_seconds(), 3)
    return 0.0


def summarise_history(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn Step Functions history events into a record of states.

    Args:
        events: ``GetExecutionHistory`` events, oldest first (boto3 shapes, datetimes).

    Returns:
        ``{"states": [{name, type, entered_at, exited_at, duration_s, output}], "current_state",
        "error", "cause"}``; a state still running has ``exited_at`` None.
    """
    states: list[dict[str, Any]] = []
    open_states: dict[str, dict[str, Any]] = {}
    error = cause = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            entry = {
                "name": details["name"],
                "type": kind.removesuffix("StateEntered"),
                "entered_at": _iso(event["timestamp"]),
                "exited_at": None,
                "duration_s": None,
                "output": None,
                "_start": event["timestamp"],
            }
            states.append(entry)
            open_states[details["name"]] = entry
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            entry = open_states.pop(details["name"], None)
            if entry is not None:
                entry["exited_at"] = _iso(event["timestamp"])
                entry["duration_s"] = _seconds(entry["_start"], event["timestamp"])
                entry["output"] = _json_or_text(details.get("output"))
        elif kind in ("ExecutionFailed", "TaskFailed", "LambdaFunctionFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            error, cause = details.get("error", error), details.get("cause", cause)
    for entry in states:
        entry.pop("_start", None)
    current = next((s["name"] for s in reversed(states) if s["exited_at"] is None), None)
    return {"states": states, "current_state": current, "error": error, "cause": cause}


def state_durations(states: list[dict[str, Any]]) -> list[tuple[str, int, float]]:
    """Aggregate visits per state name, in first-visit order: (name, visits, total seconds)."""
    totals: dict[str, list[float]] = {}
    for state in states:
        totals.setdefault(state["name"], []).append(state["duration_s"] or 0.0)
    return [(name, len(visits), round(sum(visits), 3)) for name, visits in totals.items()]


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class ExecutionRecorder:
    """Follows executions and keeps their records in ``records_dir`` up to date.

    Args:
        client: a boto3 Step Functions client.
        records_dir: folder of ``{execution name}.json`` records.
        poll_s: seconds between two history reads of a running execution.
    """

    def __init__(self, client: Any, records_dir: Path, poll_s: float = 0.2) -> None:
        """Create the recorder; call ``start`` to follow executions in a background thread."""
        self.client = client
        self.records_dir = records_dir
        self.poll_s = poll_s
        self._arns: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, execution_arn: str) -> None:
        """Start recording an execution (idempotent)."""
        with self._lock:
            self._arns.setdefault(execution_arn, "RUNNING")
        self.refresh(execution_arn)

    def refresh(self, execution_arn: str) -> dict[str, Any]:
        """Read the execution now and rewrite its record.

        Returns:
            The record: name, arn, status, input, output, started_at, stopped_at, states,
            current_state, error, cause.
        """
        described = self.client.describe_execution(executionArn=execution_arn)
        events = self.client.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        summary = summarise_history(events)
        record = {
            "name": described["name"],
            "arn": execution_arn,
            "status": described["status"],
            "input": _json_or_text(described.get("input")),
            "output": _json_or_text(described.get("output")),
            "started_at": _iso(described["startDate"]),
            "stopped_at": _iso(described["stopDate"]) if described.get("stopDate") else None,
            **summary,
        }
        record["error"] = described.get("error", record["error"])
        record["cause"] = described.get("cause", record["cause"])
        write_json_atomic(self.records_dir / f"{described['name']}.json", record)
        with self._lock:
            self._arns[execution_arn] = described["status"]
        return record

    def start(self) -> ExecutionRecorder:
        """Follow every registered execution in a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="execution-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background thread after one last refresh of running executions."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            with self._lock:
                running = [arn for arn, status in self._arns.items() if status not in TERMINAL]
            for arn in running:
                try:
                    self.refresh(arn)
                except Exception:  # noqa: BLE001 - a failed read is retried on the next tick
                    time.sleep(self.poll_s)


def mark_interrupted(records_dir: Path, known: set[str]) -> list[str]:
    """Mark records left RUNNING by a stopped engine as ABORTED, with the reason.

    The local engine keeps executions in memory; when its process ends, a running execution
    cannot resume. Its record is kept and reported, never silently left as running.

    Args:
        records_dir: the folder of execution records.
        known: names of executions the current engine knows (left untouched).

    Returns:
        The names of the records marked.
    """
    marked = []
    for path in sorted(records_dir.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") == "RUNNING" and record.get("name") not in known:
            record.update(
                status="ABORTED",
                error="EngineStopped",
                cause="The local engine stopped while this execution ran. A run that waited for "
                "its operator is resumed under a new execution; others start again by "
                "redelivering the issue's webhook or with `mlops run`.",
                stopped_at=datetime.now(UTC).isoformat(),
            )
            write_json_atomic(path, record)
            marked.append(record["name"])
    return marked
