"""Where to resume an execution whose runtime died, read from its record. Pure.

The local engine keeps executions in memory, so when its process dies a running execution is
gone; its record (``executions.ExecutionRecorder``) is not. Step Functions' redrive restarts a
failed execution at the state that failed, with that state's input; this does the same for a
lost one: it re-enters the most recent Task state the execution entered (every agent is safe to
run twice: jobs are named, records are keyed, comments carry idempotency keys), with the output
of the state before it as input. The Choice, Pass and Wait states after it run again on their
own.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def resume_point(record: dict[str, Any], resumable: Collection[str]) -> tuple[str, dict[str, Any]] | None:
    """Find the state to re-enter and its input.

    Args:
        record: an execution record (``input`` and ``states`` in entry order, each with
            ``name``, ``exited_at`` and ``output``).
        resumable: the Task states the workflow can be started at.

    Returns:
        ``(state name, its input)``; ``("PrepareData", execution input)``-like when no resumable
        state was entered yet (the first resumable state is then taken from ``resumable``);
        None when the record has no usable input to resume from.
    """
    states = [s for s in record.get("states") or [] if isinstance(s, dict)]
    first_input = record.get("input")
    for index in range(len(states) - 1, -1, -1):
        if states[index].get("name") not in resumable:
            continue
        before = next(
            (s.get("output") for s in reversed(states[:index]) if s.get("exited_at") is not None), None
        )
        state_input = before if before is not None else first_input
        if isinstance(state_input, dict):
            return str(states[index]["name"]), _without_resume(state_input)
        return None
    if isinstance(first_input, dict):
        first = next(iter(resumable), None)
        return (str(first), _without_resume(first_input)) if first else None
    return None


def last_state(record: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The state an ended execution was in, and the richest state data the record has for it.

    Returns:
        ``(state name or None, the last exited state's output, else the execution input)``.
    """
    states = [s for s in record.get("states") or [] if isinstance(s, dict)]
    name = states[-1].get("name") if states else None
    data = next((s.get("output") for s in reversed(states) if isinstance(s.get("output"), dict)), None)
    if data is None and isinstance(record.get("input"), dict):
        data = record["input"]
    return name, data


def _without_resume(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "resume"}
