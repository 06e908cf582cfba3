"""The Retrain agent: the operator's loop (AskOperator) and retrain executions started by triggers.

**AskOperator** (the training workflow): explain the miss on the issue, then wait for a reply.

The state's task waits on a task token (``.waitForTaskToken``). This agent posts the comment
with the metrics, the judge's suggestions and how to reply, and records the waiting run with
its token through ``await_operator``; the webhook handler resumes the workflow when an
authorised person answers ``/retrain``, ``/approve`` or ``/cancel``. A run resumed after a
restart comes back here: it keeps its first wait's start and deadline and posts nothing twice.
When the spec's monitoring section names Slack, e-mail or SNS, they hear of the wait too (FR-032).

**StartRetraining** (the monitoring workflow): a trigger fired (the retraining schedule, drift,
a metric floor, a data change); start a retrain execution of the endpoint's last spec, with
the trigger and the champion it replaces recorded in its input (``Trigger``), say so on the
issue, and remember it in the monitor's state (the retry budget counts it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agents.runtime import call_tool, logger, report_status
from mcp_server.core.models import WaitingRun
from mcp_server.core.monitoring.models import AlertMessage, MonitoringReport, MonitoringSchedule, MonitorState
from mcp_server.core.rendering.comments import retry_comment
from mcp_server.core.rendering.monitoring_text import retraining_comment
from mcp_server.core.workflow.monitoring_state import MonitoringEvent, MonitoringState, RetrainingStep
from mcp_server.core.workflow.records import current_record
from mcp_server.core.workflow.state import AgentEvent, RunConfig, Trigger, WorkflowInput, WorkflowState
from mcp_server.errors import MlopsError, NotFoundError

DEFAULT_TIMEOUT_S = 7 * 24 * 3600


def wait_window(state: WorkflowState, previous: dict[str, Any] | None) -> tuple[str, str]:
    """Return (waiting_since, timeout_at), ISO-8601 UTC: the first wait's, or new ones from now."""
    if previous is not None:
        return previous["waiting_since"], previous["timeout_at"]
    now = datetime.now(UTC)
    seconds = state.config.operator_timeout_s
    return now.isoformat(timespec="seconds"), (now + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def ask_operator(raw_event: dict[str, Any]) -> WaitingRun:
    """Post the operator's comment once per attempt and record the run as waiting.

    Returns:
        The waiting run as stored.

    Raises:
        MlopsError: the state has no recorded attempt or verdict (a bug upstream), or a tool failed.
    """
    event = AgentEvent.model_validate(raw_event)
    state = event.state.model_copy(update={"resume": None})
    run_id, issue = state.run_id, state.issue.number
    logger.append_keys(issue=issue, execution=event.execution, state=event.state_name)
    record, verdict = current_record(state), state.verdict
    if record is None or verdict is None or not event.task_token or not event.execution_arn:
        raise MlopsError("AskOperator needs the recorded attempt, the verdict and the task token")
    earlier = [r for r in call_tool("list_waiting_runs", {"issue_number": issue}) if r["run_id"] == run_id]
    previous = earlier[0] if earlier else None
    waiting_since, timeout_at = wait_window(state, previous)
    call_tool(
        "post_comment",
        {
            "issue_number": issue,
            "body": retry_comment(record, verdict, timeout_at),
            "idempotency_key": f"{run_id}:ask:a{record.attempt}",
        },
    )
    resumed = previous is not None and previous["execution_arn"] != event.execution_arn
    run = WaitingRun(
        run_id=run_id,
        issue_number=issue,
        execution_arn=event.execution_arn,
        task_token=event.task_token,
        attempt=record.attempt,
        max_attempts=verdict.max_attempts,
        state=state.model_dump(mode="json", exclude_none=True),
        waiting_since=waiting_since,
        timeout_at=timeout_at,
        resumes=(previous or {}).get("resumes", 0) + (1 if resumed else 0),
    )
    stored = WaitingRun.model_validate(call_tool("await_operator", {"run": run.model_dump(mode="json")}))
    if previous is None:
        _notify_channels(state, record.attempt, timeout_at)
    report_status(state, "waiting for a reply on the issue", waiting=True)
    logger.info("waiting for the operator", extra={"timeout_at": timeout_at})
    return stored


def _notify_channels(state: WorkflowState, attempt: int, timeout_at: str) -> None:
    """Tell the spec's other alert channels (Slack, e-mail, SNS) that a run waits (FR-032)."""
    alerts = (state.spec.get("monitoring") or {}).get("alerts") or {}
    channels = {"github": False, **{k: alerts.get(k) for k in ("slack", "email", "sns") if alerts.get(k)}}
    if len(channels) == 1:
        return
    model = state.spec.get("model_name") or state.run_id
    text = (
        f"Run {state.run_id} (issue #{state.issue.number}, attempt {attempt}) missed its thresholds and "
        f"waits for an operator until {timeout_at}: reply /retrain, /approve or /cancel on "
        f"{state.issue.url or 'the issue'}."
    )
    alert = AlertMessage(
        endpoint_name="",
        model_name=str(model),
        subject=f"[issue-mlops] issue #{state.issue.number} waits for an operator"[:100],
        text=text,
        markdown=text,
        channels=channels,
        dedupe_key=f"{state.run_id}:ask:a{attempt}",
    )
    try:
        call_tool("send_alert", {"alert": alert.model_dump(mode="json")})
    except MlopsError as err:  # the comment is what matters; channels are best effort
        logger.warning("operator wait not sent to the alert channels", extra={"error": str(err)})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler of a ``.waitForTaskToken`` task: its return value is not the state's output."""
    run = ask_operator(event)
    return {"waiting": True, "run_id": run.run_id, "timeout_at": run.timeout_at}


def retraining_execution_name(issue_number: int, kind: str, at: datetime) -> str:
    """``issue-{n}-{kind}-{yyyymmddhhmmss}``: tied to its issue, as ``/deploy`` looks runs up."""
    return f"issue-{issue_number}-{kind.replace('_', '-')}-{at.strftime('%Y%m%d%H%M%S')}"[:80]


def start_retraining(event: MonitoringEvent) -> RetrainingStep:
    """StartRetraining: a retrain execution of the endpoint's last spec (see the module).

    Raises:
        MlopsError: EvaluateAlarms named no trigger (a bug in the ASL), or a tool failed.
    """
    state = event.state
    schedule = MonitoringSchedule.model_validate(
        call_tool("get_monitoring_schedule", {"endpoint_name": state.endpoint_name})
    )
    reason = state.alarms.retrain if state.alarms is not None else None
    if reason is None:
        raise MlopsError("StartRetraining needs the trigger EvaluateAlarms found")
    now = datetime.now(UTC)
    name = retraining_execution_name(schedule.issue.number, reason.kind, now)
    feedback_uri, feedback_rows = _feedback(schedule, state)
    workflow_input = WorkflowInput(
        issue=schedule.issue,
        spec=schedule.spec,
        spec_hash=schedule.spec_hash,
        run_id=name,
        run_started_at=now.isoformat(timespec="seconds"),
        trigger=Trigger(
            kind=reason.kind,
            by="monitor",
            reason=reason.reason,
            endpoint_name=schedule.endpoint_name,
            monitoring_job=state.job.job_name if state.job is not None else "",
            previous_version=schedule.model_version,
            previous_spec_hash=schedule.spec_hash,
            previous_data_version=schedule.training_data_version,
            feedback_uri=feedback_uri,
            feedback_rows=feedback_rows,
        ),
        config=RunConfig.model_validate(schedule.run_config),
    )
    started = call_tool(
        "start_retraining",
        {"execution_name": name, "workflow_input": workflow_input.model_dump(mode="json", exclude_none=True)},
    )
    call_tool(
        "post_comment",
        {
            "issue_number": schedule.issue.number,
            "body": retraining_comment(reason.kind, reason.reason, name, schedule.endpoint_name),
            "idempotency_key": f"retrain:{name}",
        },
    )
    remembered = MonitorState.model_validate(
        call_tool("get_monitor_state", {"endpoint_name": state.endpoint_name})
    )
    entry = {
        "execution_name": name,
        "execution_arn": started["execution_arn"],
        "kind": reason.kind,
        "at": now.isoformat(timespec="seconds"),
    }
    update: dict[str, Any] = {"retrains": [*remembered.retrains, entry][-50:]}
    if reason.kind == "schedule":
        update["last_scheduled_retrain_at"] = entry["at"]
    call_tool(
        "save_monitor_state",
        {
            "endpoint_name": state.endpoint_name,
            "state": remembered.model_copy(update=update).model_dump(mode="json"),
        },
    )
    logger.info("retrain started", extra={"execution": name, "trigger": reason.kind})
    return RetrainingStep(
        execution_name=name,
        execution_arn=started["execution_arn"],
        issue_number=schedule.issue.number,
        trigger=reason,
        started=bool(started["started"]),
    )


def _feedback(schedule: MonitoringSchedule, state: MonitoringState) -> tuple[str, int]:
    """The labelled captured rows a retrain adds (``retraining.feedback``): ``(uri, rows)``.

    They come from this execution's monitoring job, else the endpoint's last one; ``("", 0)``
    when feedback is off or no job collected labelled rows.
    """
    if not schedule.spec.get("retraining", {}).get("feedback"):
        return "", 0
    job = state.job.job_name if state.job is not None and state.job.job_name else ""
    if not job:
        job = MonitorState.model_validate(
            call_tool("get_monitor_state", {"endpoint_name": state.endpoint_name})
        ).last_job
    if not job:
        return "", 0
    try:
        report = MonitoringReport.model_validate(call_tool("describe_monitoring_job", {"job_name": job}))
    except NotFoundError:
        return "", 0
    return report.feedback_uri, report.feedback_rows if report.feedback_uri else 0


def start_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler of StartRetraining: the RetrainingStep as JSON."""
    return start_retraining(MonitoringEvent.model_validate(event)).model_dump(mode="json", exclude_none=True)
