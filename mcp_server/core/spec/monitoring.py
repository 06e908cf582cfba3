"""Spec rules of the monitoring section and the retraining triggers. Pure.

- Both schedule expressions must parse (``core.monitoring.schedule``).
- Monitoring watches an endpoint's captured requests: it needs a deployment section that
  captures (``data_capture`` above 0; SageMaker Serverless Inference captures nothing).
- A metric floor names a metric the task produces; a fraction metric's floor is in 0..1.
- The drift and metric-floor triggers act on monitoring's findings: they need the section.
- Every trigger is kept with the deployed endpoint's schedule: triggers need a deployment.
- Feedback (labelled captured rows joining a retrain's data) needs a supervised task, a
  monitoring section (its job collects the rows) and a trigger that retrains.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mcp_server.core.monitoring.schedule import ScheduleError, parse_schedule
from mcp_server.core.spec import catalog
from mcp_server.core.spec.errors import SpecError, hint, or_list

#: The keys of ``retraining.triggers`` that start retrains.
TRIGGERS: tuple[str, ...] = ("schedule", "drift_psi", "metric_floor", "data_change", "code_change")


def monitoring_errors(data: dict[str, Any], produced: Collection[str] | None) -> list[SpecError]:
    """Return the errors of ``monitoring`` and ``retraining.triggers`` (see the module).

    Args:
        data: the raw spec mapping.
        produced: the metrics the spec's task produces, or None when the task is invalid.
    """
    errors: list[SpecError] = []
    monitoring = data.get("monitoring")
    retraining = data.get("retraining")
    triggers = retraining.get("triggers") if isinstance(retraining, dict) else None
    if isinstance(monitoring, dict):
        errors.extend(_schedule_error("monitoring.schedule", monitoring.get("schedule")))
        errors.extend(_floor_errors("monitoring.metric_floor", monitoring.get("metric_floor"), produced))
        errors.extend(_capture_errors(data.get("deployment"), monitoring))
    if isinstance(retraining, dict) and retraining.get("feedback") is True:
        errors.extend(_feedback_errors(data, monitoring))
    if isinstance(triggers, dict):
        errors.extend(_schedule_error("retraining.triggers.schedule", triggers.get("schedule")))
        errors.extend(
            _floor_errors("retraining.triggers.metric_floor", triggers.get("metric_floor"), produced)
        )
        if not isinstance(data.get("deployment"), dict) and any(triggers.get(k) for k in TRIGGERS):
            errors.append(
                SpecError(
                    "retraining.triggers",
                    triggers,
                    "retrain a deployed model (they are kept with its endpoint); add a deployment section",
                )
            )
        for key in ("drift_psi", "metric_floor"):
            if triggers.get(key) and not isinstance(monitoring, dict):
                errors.append(
                    SpecError(
                        f"retraining.triggers.{key}",
                        triggers[key],
                        "acts on monitoring's findings; add a monitoring section (monitoring: {})",
                    )
                )
    return errors


def _schedule_error(path: str, expression: Any) -> list[SpecError]:
    if expression is None or not isinstance(expression, str):
        return []
    try:
        parse_schedule(expression)
    except ScheduleError as err:
        return [SpecError(path, expression, str(err))]
    return []


def _floor_errors(path: str, floors: Any, produced: Collection[str] | None) -> list[SpecError]:
    if not isinstance(floors, dict) or produced is None:
        return []
    errors = []
    for metric, value in floors.items():
        if metric not in produced:
            errors.append(
                SpecError(
                    f"{path}.{metric}",
                    metric,
                    f"not a metric of this task{hint(str(metric), produced)}; "
                    f"use {or_list(sorted(produced))}",
                )
            )
        elif isinstance(value, int | float) and metric in catalog.FRACTION_METRICS and not 0 <= value <= 1:
            errors.append(SpecError(f"{path}.{metric}", value, "a fraction between 0 and 1"))
    return errors


def _capture_errors(deployment: Any, monitoring: dict[str, Any]) -> list[SpecError]:
    if not isinstance(deployment, dict):
        return [
            SpecError(
                "monitoring",
                monitoring,
                "watches a deployed endpoint's captured requests; add a deployment section",
            )
        ]
    if deployment.get("data_capture", 100) == 0 or deployment.get("serverless") is not None:
        why = "serverless endpoints capture nothing" if deployment.get("serverless") else "data_capture is 0"
        return [
            SpecError(
                "monitoring",
                monitoring,
                f"reads the endpoint's captured requests, but {why}; set deployment.data_capture above 0",
            )
        ]
    return []


def _feedback_errors(data: dict[str, Any], monitoring: Any) -> list[SpecError]:
    if data.get("task") not in catalog.SUPERVISED_TASKS:
        return [
            SpecError(
                "retraining.feedback",
                True,
                f"labelled rows train supervised models only; the task is {data.get('task')!r}",
            )
        ]
    retraining = data.get("retraining") or {}
    triggers = retraining.get("triggers") if isinstance(retraining, dict) else None
    if not isinstance(monitoring, dict):
        return [
            SpecError(
                "retraining.feedback",
                True,
                "the labelled captured rows are collected by the monitoring job; add a monitoring section",
            )
        ]
    if not isinstance(triggers, dict) or not any(triggers.get(k) for k in TRIGGERS):
        return [
            SpecError(
                "retraining.feedback",
                True,
                "feeds the next triggered retrain; add retraining.triggers (schedule, drift_psi, "
                "metric_floor, data_change or code_change)",
            )
        ]
    return []
