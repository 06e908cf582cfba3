"""Execution records: each execution's input, states, output and status, written as it runs.

``ExecutionRecorder`` follows executions through ``GetExecutionHistory`` and rewrites
``{home}/executions/{name}.json`` (atomically) whenever a state enters or exits, so the record
survives the process. ``summarise_history`` is the pure part: history events in, record out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from statemachine.workspace import write_json_atomic

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

    Each record names the runtime that owns the execution (``runtime_id``), so another process
    can tell a live execution from one whose runtime is gone. A resumed execution (same name,
    a later start) keeps its record: the states before the resume stay in ``states``, with
    ``redrives`` counting the resumes.

    Reading an execution's history costs about 1 ms of CPU per event in the runtime's own
    process (the engine serialises it, boto3 parses it), so the recorder reads it only when
    something may have changed:

    - when a task of the execution starts (``notify``, which the engine calls before each Lambda
      invocation): the states before it have ended and the task's state has been entered;
    - when the execution leaves the RUNNING list (``ListExecutions``, one call per tick for
      every execution): it ended, so the record gets its last states and status;
    - otherwise every ``idle_refresh_s`` (states no task follows at once: Wait, Choice, Pass).

    Args:
        client: a boto3 Step Functions client.
        records_dir: folder of ``{execution name}.json`` records.
        runtime_id: the owning runtime's id.
        on_end: called with the record (in its own thread) when a followed execution ends.
        poll_s: seconds between two ticks (one ``ListExecutions`` call while any runs).
        idle_refresh_s: most seconds between two history reads of a running execution.
    """

    def __init__(
        self,
        client: Any,
        records_dir: Path,
        runtime_id: str = "",
        on_end: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 0.2,
        idle_refresh_s: float = 2.0,
    ) -> None:
        """Create the recorder; call ``start`` to follow executions in a background thread."""
        self.client = client
        self.records_dir = records_dir
        self.runtime_id = runtime_id
        self.on_end = on_end
        self.poll_s = poll_s
        self.idle_refresh_s = idle_refresh_s
        self._arns: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._read_at: dict[str, float] = {}
        self._earlier: dict[str, dict[str, Any]] = {}
        self._latest: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, execution_arn: str, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start recording an execution (idempotent) and return its record.

        Args:
            execution_arn: the execution.
            earlier: the record of the execution this one resumes (same name): its input,
                first start and states are kept.
        """
        with self._lock:
            self._arns.setdefault(execution_arn, "RUNNING")
            self._by_name[execution_arn.rsplit(":", 1)[-1]] = execution_arn
            if earlier is not None:
                self._earlier[execution_arn] = earlier
        return self.refresh(execution_arn)

    def knows(self, execution_name: str) -> bool:
        """Whether an execution of that name is followed."""
        with self._lock:
            return execution_name in self._by_name

    def notify(self, execution_name: str | None) -> None:
        """Read the named execution again soon: one of its tasks is starting.

        Args:
            execution_name: the execution's name (``$$.Execution.Name``); names this recorder
                does not follow, and None, are ignored.
        """
        with self._lock:
            arn = self._by_name.get(execution_name or "")
            if arn is None or self._arns.get(arn) in TERMINAL:
                return
            self._dirty.add(arn)
        self._wake.set()

    def refresh(self, execution_arn: str) -> dict[str, Any]:
        """Read the execution now and rewrite its record.

        Returns:
            The record: name, arn, status, input, output, started_at, stopped_at, states,
            current_state, error, cause, runtime_id, redrives.
        """
        with self._lock:
            self._read_at[execution_arn] = time.monotonic()
        described = self.client.describe_execution(executionArn=execution_arn)
        events = self.client.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        summary = summarise_history(events)
        earlier = self._earlier.get(execution_arn)
        record = {
            "name": described["name"],
            "arn": execution_arn,
            "status": described["status"],
            "input": _json_or_text(described.get("input")),
            "output": _json_or_text(described.get("output")),
            "started_at": _iso(described["startDate"]),
            "stopped_at": _iso(described["stopDate"]) if described.get("stopDate") else None,
            "runtime_id": self.runtime_id,
            "redrives": 0,
            **summary,
        }
        record["error"] = described.get("error", record["error"])
        record["cause"] = described.get("cause", record["cause"])
        if earlier is not None:
            record.update(
                input=earlier.get("input"),
                started_at=earlier.get("started_at", record["started_at"]),
                states=[*earlier.get("states", []), *record["states"]],
                redrives=int(earlier.get("redrives", 0)) + 1,
            )
        write_json_atomic(self.records_dir / f"{described['name']}.json", record)
        with self._lock:
            before = self._arns.get(execution_arn)
            self._arns[execution_arn] = described["status"]
            self._latest[execution_arn] = record
        if before not in TERMINAL and described["status"] in TERMINAL and self.on_end is not None:
            threading.Thread(target=self.on_end, args=(record,), name="execution-ended", daemon=True).start()
        return record

    def latest(self, execution_arn: str) -> dict[str, Any]:
        """The execution's record as last read by the recorder's thread (following it if new).

        Cheaper than ``refresh`` for a caller that polls: the record is at most one polling
        interval old.
        """
        with self._lock:
            known = execution_arn in self._arns
            record = self._latest.get(execution_arn)
        if not known:
            return self.follow(execution_arn)
        return record if record is not None else self.refresh(execution_arn)

    def start(self) -> ExecutionRecorder:
        """Follow every registered execution in a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="execution-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def due(self, running: list[str], still_running: set[str] | None, now: float) -> list[str]:
        """The followed running executions whose history should be read now.

        Args:
            running: executions this recorder still takes for running.
            still_running: the engine's RUNNING executions, or None when that list failed
                (then every one is due).
            now: ``time.monotonic()``.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            read_at = dict(self._read_at)
        return [
            arn
            for arn in running
            if still_running is None
            or arn in dirty
            or arn not in still_running
            or now - read_at.get(arn, 0.0) >= self.idle_refresh_s
        ]

    def _still_running(self, running: list[str]) -> set[str] | None:
        """The RUNNING executions of the state machines of ``running`` (None on a failed call)."""
        machines = {arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0] for arn in running}
        found: set[str] = set()
        try:
            for machine in machines:
                pages = self.client.get_paginator("list_executions").paginate(
                    stateMachineArn=machine, statusFilter="RUNNING"
                )
                found.update(e["executionArn"] for page in pages for e in page["executions"])
        except Exception:  # noqa: BLE001 - the tick reads every running execution instead
            return None
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            with self._lock:
                running = [arn for arn, status in self._arns.items() if status not in TERMINAL]
            if self._stop.is_set() or not running:
                continue
            for arn in self.due(running, self._still_running(running), time.monotonic()):
                try:
                    self.refresh(arn)
                except Exception:  # noqa: BLE001 - a failed read is retried on the next tick
                    time.sleep(self.poll_s)


def read_record(path: Path) -> dict[str, Any] | None:
    """Return an execution record, or None when the file is unreadable (being replaced, corrupt)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
