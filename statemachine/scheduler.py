"""The local scheduler of ``mlops serve``: EventBridge Scheduler's part, for the monitoring workflow.

Every ``tick_s`` seconds it reads each endpoint's monitoring schedule and the monitor's state,
and starts the monitoring workflow on the local engine for what is due:

- the monitoring schedule (``MonitoringSchedule.check_expression``): due at the expression's
  next run after the last window's end (the schedule's creation the first time); input
  ``{"endpoint_name": ...}``, as EventBridge Scheduler's schedule sends;
- the retraining schedule (``retraining.triggers.schedule``): due at its next run after the
  last scheduled retrain; input ``{"endpoint_name": ..., "trigger": "schedule"}``.

Each tick also runs the ``sampler`` it was given first (``mlops serve``: the local endpoints'
system metrics, ``LocalEndpointBackend.record_system_metrics``).

Execution names carry the due time (``monitor-{endpoint}-{yyyymmddhhmmss}``), so a run that is
due is started once however many ticks see it (Step Functions refuses a finished execution's
name, and returns a running one's; the scheduler also remembers what it started). A run that
failed is not started again for the same time; the next due time comes from its schedule.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp_server.core.monitoring.models import MonitoringSchedule, MonitorState
from mcp_server.core.monitoring.schedule import ScheduleError, parse_schedule

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueRun:
    """A monitoring execution to start: its name and input."""

    name: str
    input: dict[str, str]


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def due_runs(schedule: MonitoringSchedule, state: MonitorState, now: dt.datetime) -> list[DueRun]:
    """The monitoring executions due for one endpoint at ``now`` (see the module).

    An expression that does not parse (a schedule written by hand) is skipped and logged.
    """
    due = []
    created = _parse(schedule.created_at) or now
    checks = (
        ("monitor", schedule.check_expression, _parse(state.last_until) or created, {}),
        (
            "retrain",
            schedule.triggers.schedule if schedule.triggers else None,
            _parse(state.last_scheduled_retrain_at) or created,
            {"trigger": "schedule"},
        ),
    )
    for kind, expression, last, extra in checks:
        if not expression:
            continue
        try:
            at = parse_schedule(expression).next_run(last)
        except ScheduleError as err:
            LOG.warning("schedule of %s skipped: %s", schedule.endpoint_name, err)
            continue
        if at <= now:
            name = f"{kind}-{schedule.endpoint_name[:50]}-{at.strftime('%Y%m%d%H%M%S')}"
            due.append(DueRun(name=name, input={"endpoint_name": schedule.endpoint_name, **extra}))
    return due


class LocalScheduler:
    """Starts due monitoring executions on the local engine (see the module).

    Args:
        monitoring: the workspace's monitoring backend (schedules and states).
        client: a boto3 Step Functions client bound to the local engine.
        state_machine_arn: the monitoring workflow.
        tick_s: seconds between two looks.
        sampler: called at each tick before the schedules are read (its errors are logged).
    """

    def __init__(
        self,
        monitoring: Any,
        client: Any,
        state_machine_arn: str,
        tick_s: float = 30.0,
        sampler: Callable[[], object] | None = None,
    ) -> None:
        self._monitoring = monitoring
        self._sampler = sampler
        self._client = client
        self._machine = state_machine_arn
        self.tick_s = tick_s
        self.started: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: dt.datetime | None = None) -> list[str]:
        """Start every due execution now; return the ARNs of those this tick started."""
        now = now or dt.datetime.now(dt.UTC)
        if self._sampler is not None:
            try:
                self._sampler()
            except Exception:  # noqa: BLE001 - system metrics must not stop the schedules
                LOG.exception("system metrics not sampled")
        started = []
        for schedule in self._monitoring.list_monitoring_schedules():
            try:
                state = self._monitoring.get_monitor_state(schedule.endpoint_name)
            except Exception as err:  # noqa: BLE001 - one unreadable state must not stop the others
                LOG.warning("monitor state of %s unreadable: %s", schedule.endpoint_name, err)
                continue
            for run in due_runs(schedule, state, now):
                if run.name in self.started:  # a run still going (StartExecution would return it again)
                    continue
                try:
                    answer = self._client.start_execution(
                        stateMachineArn=self._machine, name=run.name, input=json.dumps(run.input)
                    )
                except self._client.exceptions.ExecutionAlreadyExists:
                    continue
                started.append(answer["executionArn"])
                self.started.append(run.name)
                LOG.info("started %s", run.name)
        return started

    def start(self) -> LocalScheduler:
        """Tick in a daemon thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="monitoring-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                LOG.exception("monitoring scheduler tick failed")
