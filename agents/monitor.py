"""The Monitor agent: the monitoring workflow's RunMonitoringJob, EvaluateAlarms, Alert and ReportFailure.

``statemachine/monitoring_workflow.asl.json`` runs on the endpoint's schedule (EventBridge
Scheduler on AWS, ``mlops serve`` locally) or on ``mlops monitor NAME``:

- **run**: the monitoring job over the requests captured since the last window's end (the
  schedule's creation the first time) up to the execution's start (``run_monitoring_job``).
- **evaluate**: the spec's rules against the report and the endpoint's traffic over the window
  (``core.monitoring.alerts``); the incidents that open or clear; which retraining trigger
  fires (drift, metric floor, data change; the retraining schedule and a push that changed the
  model's code, started by the webhook, fire by themselves), within the
  retry budget: no second retrain while one runs, and at most ``retraining.max_attempts``
  triggered retrains per day. The window's end is saved, so the next job starts there.
- **alert**: commit the report under ``training_history/monitoring/{endpoint}/{job}/`` and send
  one alert for the opened incidents and one notice for the resolved ones, to the spec's
  channels; the incidents are saved after.
- **report_failure**: a monitoring execution that failed says so on the issue and the channels.

The Retrain agent (``agents.retrain``) starts the retrain execution.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agents.runtime import call_tool, logger
from mcp_server.core.deployment.models import EndpointMetrics
from mcp_server.core.monitoring.alerts import findings, incident_changes, retraining_reasons
from mcp_server.core.monitoring.models import (
    AlertMessage,
    Finding,
    Incident,
    MonitoringReport,
    MonitoringSchedule,
    MonitorState,
)
from mcp_server.core.rendering.monitoring_text import (
    alert_markdown,
    alert_text,
    resolved_markdown,
    resolved_text,
)
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.core.workflow.monitoring_state import (
    AlarmsStep,
    AlertStep,
    MonitoringEvent,
    MonitoringJobStep,
    RetrainReason,
)
from mcp_server.errors import MlopsError, NotFoundError

#: Seconds in the window over which triggered retrains are counted against the budget.
BUDGET_WINDOW_S = 86_400


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def schedule_of(endpoint_name: str) -> MonitoringSchedule:
    """The endpoint's monitoring schedule (NotFoundError when it is not monitored)."""
    return MonitoringSchedule.model_validate(
        call_tool("get_monitoring_schedule", {"endpoint_name": endpoint_name})
    )


def monitor_state(endpoint_name: str) -> MonitorState:
    """What the monitor remembers of the endpoint."""
    return MonitorState.model_validate(call_tool("get_monitor_state", {"endpoint_name": endpoint_name}))


def save_state(endpoint_name: str, state: MonitorState) -> None:
    """Store the monitor's state of the endpoint."""
    call_tool("save_monitor_state", {"endpoint_name": endpoint_name, "state": state.model_dump(mode="json")})


def job_name(endpoint_name: str, until: str) -> str:
    """``mon-{endpoint}-{yyyymmddhhmmss}``: one job per window end (a retried state finds it)."""
    stamp = "".join(c for c in until if c.isdigit())[:14]
    return f"mon-{endpoint_name[:40].rstrip('-')}-{stamp}"


def run(event: MonitoringEvent) -> MonitoringJobStep:
    """RunMonitoringJob: the job over ``[last window's end, execution start)``."""
    state = event.state
    logger.append_keys(endpoint=state.endpoint_name, execution=event.execution)
    schedule = schedule_of(state.endpoint_name)
    until = state.until or (
        _iso(_parse(event.execution_started)) if event.execution_started else _iso(dt.datetime.now(dt.UTC))
    )
    remembered = monitor_state(state.endpoint_name)
    since = remembered.last_until or schedule.created_at or None
    if schedule.monitoring is None or not schedule.baseline_uri:
        why = "no monitoring section" if schedule.monitoring is None else "no drift baseline"
        logger.info("no monitoring job", extra={"why": why})
        return MonitoringJobStep(job_name="", status="Skipped", since=since, until=until)
    monitoring = schedule.monitoring
    spec = TrainingSpec.model_validate(schedule.spec)
    request = {
        "job_name": job_name(state.endpoint_name, until),
        "endpoint_name": state.endpoint_name,
        "baseline_uri": schedule.baseline_uri,
        "since": since,
        "until": until,
        "task": spec.task,
        "target": spec.dataset.target if spec.dataset else None,
        "drift_psi": monitoring.drift_psi,
        "metric_floor": monitoring.metric_floor,
        "max_runtime_s": min(spec.compute.max_runtime_s, 86_400),
    }
    report = MonitoringReport.model_validate(call_tool("run_monitoring_job", {"request": request}))
    logger.info("monitoring job done", extra={"job": report.job_name, "status": report.status})
    return MonitoringJobStep(
        job_name=report.job_name,
        status=report.status,
        since=report.since,
        until=report.until or until,
        rows=report.rows,
        bad_lines=report.bad_lines,
        drifted_features=report.drifted_features,
        report_uri=report.report_uri,
    )


def evaluate(event: MonitoringEvent) -> AlarmsStep:
    """EvaluateAlarms: findings, incidents and the retraining trigger (see the module)."""
    state = event.state
    schedule = schedule_of(state.endpoint_name)
    remembered = monitor_state(state.endpoint_name)
    job = state.job
    now = _iso(dt.datetime.now(dt.UTC))
    reasons: list[RetrainReason] = []
    data_version = ""
    opened, resolved, after = [], [], dict(remembered.incidents)
    if state.trigger == "schedule":
        expression = schedule.triggers.schedule if schedule.triggers else ""
        reasons.append(
            RetrainReason(kind="schedule", reason=f"the retraining schedule `{expression}` came due")
        )
    elif state.trigger == "code_change":
        if schedule.triggers is not None and schedule.triggers.code_change:
            reason = state.reason or "a push changed its code"
            reasons.append(RetrainReason(kind="code_change", reason=reason))
    elif job is not None and job.job_name and schedule.monitoring is not None:
        report = MonitoringReport.model_validate(
            call_tool("describe_monitoring_job", {"job_name": job.job_name})
        )
        traffic = _traffic(state.endpoint_name, job.since, schedule)
        found = findings(report, schedule.monitoring, traffic)
        opened, resolved, after = incident_changes(remembered.incidents, found, now)
        reasons += [RetrainReason(kind=k, reason=r) for k, r in retraining_reasons(report, schedule.triggers)]  # type: ignore[arg-type]
    if (
        state.trigger not in ("schedule", "code_change")
        and schedule.triggers is not None
        and schedule.triggers.data_change
    ):
        data_version, changed = _data_change(schedule, remembered)
        if changed:
            reasons.append(RetrainReason(kind="data_change", reason=changed))
    retrain, skipped = _within_budget(reasons, remembered, schedule)
    retrained_version = (
        {"data_version_retrained": data_version}
        if retrain is not None and retrain.kind == "data_change"
        else {}
    )
    notify = bool(opened or resolved)
    updated = remembered.model_copy(
        update={
            # a skipped job (data-change checks only) moves the window too, or it would be due again
            "last_until": job.until if job is not None else remembered.last_until,
            "last_job": job.job_name if job is not None and job.job_name else remembered.last_job,
            "last_status": job.status if job is not None else remembered.last_status,
            # with something to announce, Alert saves the incidents once it has delivered them
            **({} if notify else {"incidents": after}),
            # the retraining schedule fired, whether or not the budget lets it start a run
            **({"last_scheduled_retrain_at": now} if state.trigger == "schedule" else {}),
            **retrained_version,
        }
    )
    save_state(state.endpoint_name, updated)
    return AlarmsStep(
        opened=[f.key for f in opened],
        resolved=[i.key for i in resolved],
        firing=sorted(after),
        notify=notify,
        retrain=retrain,
        skipped_retrain=skipped,
        findings=opened,
        resolved_incidents=resolved,
    )


def _traffic(endpoint_name: str, since: str | None, schedule: MonitoringSchedule) -> dict[str, Any] | None:
    """The endpoint's per-variant metrics over the window, when a traffic rule is set."""
    monitoring = schedule.monitoring
    if monitoring is None or (monitoring.error_rate is None and monitoring.p95_latency_ms is None):
        return None
    arguments: dict[str, Any] = {"endpoint_name": endpoint_name}
    if since:
        arguments["since"] = _parse(since).timestamp()
    try:
        metrics = EndpointMetrics.model_validate(call_tool("get_endpoint_metrics", arguments))
    except MlopsError as err:
        logger.warning("no endpoint metrics", extra={"error": str(err)})
        return None
    return metrics.variants


def _data_change(schedule: MonitoringSchedule, remembered: MonitorState) -> tuple[str, str]:
    """The dataset source's version, and why it changed since the deployed model was trained.

    Returns:
        ``(version, reason)``; the reason is ``""`` when the version is the deployed model's, or
        the one the last data-change retrain was started for (its challenger may not have won).
    """
    source = schedule.data_source
    if not source:
        return "", ""
    try:
        version = str(call_tool("get_data_version", {"source": source}))
    except MlopsError as err:
        logger.warning("data version unreadable", extra={"error": str(err)})
        return "", ""
    known = {schedule.data_version, remembered.data_version_retrained}
    if version and schedule.data_version and version not in known:
        return version, f"the dataset source {source} changed ({schedule.data_version[:19]} → {version[:19]})"
    return version, ""


def _within_budget(
    reasons: list[RetrainReason], remembered: MonitorState, schedule: MonitoringSchedule
) -> tuple[RetrainReason | None, str]:
    """The first trigger, unless a triggered retrain runs or the day's budget is spent."""
    if not reasons:
        return None, ""
    first = reasons[0]
    if remembered.retrains:
        last = remembered.retrains[-1]
        status = str(call_tool("describe_retraining", {"execution_arn": last.get("execution_arn", "")}))
        if status == "RUNNING":
            return None, f"{first.reason}, but retrain {last.get('execution_name')} is still running"
    budget = int(schedule.spec.get("retraining", {}).get("max_attempts", 3))
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=BUDGET_WINDOW_S)
    recent = [r for r in remembered.retrains if r.get("at") and _parse(r["at"]) >= since]
    if len(recent) >= budget:
        return None, (
            f"{first.reason}, but {len(recent)} triggered retrain(s) ran in the last 24 hours "
            f"(retraining.max_attempts: {budget})"
        )
    return first, ""


def alert(event: MonitoringEvent) -> AlertStep:
    """Alert: commit the report, send the opened incidents' alert and the resolved notice."""
    state = event.state
    alarms, job = state.alarms, state.job
    if alarms is None or job is None or not job.job_name:
        raise MlopsError("Alert needs EvaluateAlarms' result and a monitoring job")
    schedule = schedule_of(state.endpoint_name)
    remembered = monitor_state(state.endpoint_name)
    report = MonitoringReport.model_validate(call_tool("describe_monitoring_job", {"job_name": job.job_name}))
    report_url, plot_urls = _commit_report(schedule, job.job_name)
    channels = schedule.monitoring.alerts.model_dump() if schedule.monitoring else {}
    common = {
        "endpoint_name": schedule.endpoint_name,
        "model_name": schedule.model_name,
        "issue_number": schedule.issue.number,
        "issue_title": schedule.issue.title,
        "spec_yaml": _yaml(schedule.spec),
        "labels": ["mlops:train", f"model:{schedule.model_name}"[:50]],
        "channels": channels,
    }
    deliveries: list[dict[str, object]] = []
    incidents = dict(remembered.incidents)
    if alarms.findings:
        next_step = _next_step(alarms)
        kinds = ", ".join(sorted({f.kind for f in alarms.findings}))
        message = AlertMessage(
            kind="alert",
            subject=f"[issue-mlops] {schedule.endpoint_name}: {kinds}"[:100],
            text=alert_text(schedule, report, alarms.findings, report_url),
            markdown=alert_markdown(schedule, report, alarms.findings, report_url, plot_urls, next_step),
            dedupe_key=f"{schedule.endpoint_name}:{job.job_name}:opened",
            **common,
        )
        sent = call_tool("send_alert", {"alert": message.model_dump(mode="json")})
        deliveries += sent
        where = next(
            (d.get("target", "") for d in sent if d.get("channel") == "github" and d.get("delivered")), ""
        )
        now = _iso(dt.datetime.now(dt.UTC))
        for finding in alarms.findings:
            incidents[finding.key] = incidents.get(finding.key) or _incident(finding, now, str(where))
    for key in alarms.firing:
        if key in incidents:
            incidents[key] = incidents[key].model_copy(update={"last_seen_at": _iso(dt.datetime.now(dt.UTC))})
    if alarms.resolved_incidents:
        message = AlertMessage(
            kind="resolved",
            subject=f"[issue-mlops] {schedule.endpoint_name}: resolved"[:100],
            text=resolved_text(schedule, alarms.resolved_incidents),
            markdown=resolved_markdown(schedule, alarms.resolved_incidents, job.job_name),
            dedupe_key=f"{schedule.endpoint_name}:{job.job_name}:resolved",
            **common,
        )
        deliveries += call_tool("send_alert", {"alert": message.model_dump(mode="json")})
        for incident in alarms.resolved_incidents:
            incidents.pop(incident.key, None)
    save_state(state.endpoint_name, remembered.model_copy(update={"incidents": incidents}))
    return AlertStep(report_url=report_url, deliveries=deliveries)


def _incident(finding: Finding, now: str, where: str) -> Incident:
    """The incident a delivered alert opened (``where``: its GitHub comment)."""
    return Incident(
        key=finding.key, opened_at=now, last_seen_at=now, summary=finding.summary, comment_url=where
    )


def _next_step(alarms: AlarmsStep) -> str:
    if alarms.retrain is not None:
        return f"A retrain run starts now ({alarms.retrain.kind.replace('_', ' ')} trigger)."
    if alarms.skipped_retrain:
        return f"No retrain starts: {alarms.skipped_retrain}."
    return (
        "No retraining trigger is set for this. To retrain on fresh data, add `retraining.triggers` to the "
        "spec, or open an issue with the spec and the `mlops:train` label."
    )


def _commit_report(schedule: MonitoringSchedule, job: str) -> tuple[str, dict[str, str]]:
    """Commit the job's report and plots; return its link and the plots' image links."""
    report = call_tool("get_drift_report", {"job_name": job})
    folder = f"monitoring/{schedule.endpoint_name}/{job}"
    commit = call_tool(
        "record_report",
        {
            "folder": folder,
            "markdown": report["markdown"],
            "files": report["plots"],
            "message": f"monitoring: {schedule.endpoint_name} {job} (issue #{schedule.issue.number})",
        },
    )
    if commit.get("url"):
        base = commit["url"].rsplit("/", 1)[0]
        return commit["url"], {name: f"{base}/{name}?raw=true" for name in report["plots"]}
    base = f"{commit['repository']}/{commit['path'].rsplit('/', 1)[0]}"
    return f"{commit['repository']}/{commit['path']}", {name: f"{base}/{name}" for name in report["plots"]}


def _yaml(spec: dict[str, Any]) -> str:
    import yaml

    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: prune(v) for k, v in value.items() if v is not None and v != {} and v != []}
        return value

    return yaml.safe_dump(prune(spec), sort_keys=False)


def report_failure(event: MonitoringEvent) -> AlertStep:
    """ReportFailure: say on the issue (and the channels) that a monitoring execution failed."""
    state = event.state
    error = state.error
    try:
        schedule = schedule_of(state.endpoint_name)
    except NotFoundError:
        logger.error("monitoring failed for an endpoint without a schedule", extra={"error": str(error)})
        return AlertStep()
    cause = (error.Cause if error else "")[:1500]
    markdown = (
        f"### Monitoring failed: `{schedule.endpoint_name}`\n\n"
        f"Execution `{event.execution}` stopped at {error.State if error and error.State else 'a state'}: "
        f"`{error.Error if error else 'unknown error'}`.\n\n```\n{cause}\n```\n\n"
        "The window is read again at the next run; nothing was lost."
    )
    message = AlertMessage(
        kind="alert",
        subject=f"[issue-mlops] {schedule.endpoint_name}: monitoring failed"[:100],
        text=f"Monitoring of {schedule.endpoint_name} failed: {error.Error if error else ''}: {cause[:500]}",
        markdown=markdown,
        endpoint_name=schedule.endpoint_name,
        model_name=schedule.model_name,
        issue_number=schedule.issue.number,
        issue_title=schedule.issue.title,
        spec_yaml=_yaml(schedule.spec),
        labels=["mlops:train", f"model:{schedule.model_name}"[:50]],
        channels=schedule.monitoring.alerts.model_dump() if schedule.monitoring else {"github": True},
        dedupe_key=f"{schedule.endpoint_name}:{event.execution}:failed",
    )
    return AlertStep(deliveries=call_tool("send_alert", {"alert": message.model_dump(mode="json")}))


ACTIONS = {"run": run, "evaluate": evaluate, "alert": alert, "report_failure": report_failure}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``action`` chooses the operation (see the module); its step as JSON.

    Raises:
        ValueError: an unknown action (a bug in the ASL).
    """
    parsed = MonitoringEvent.model_validate(event)
    if parsed.action not in ACTIONS:
        raise ValueError(f"unknown monitor action {parsed.action!r}; expected one of {', '.join(ACTIONS)}")
    return ACTIONS[parsed.action](parsed).model_dump(mode="json", exclude_none=True)
