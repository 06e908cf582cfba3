"""Agent of the deployment states (result: ``$.deployment``, a ``DeploymentProgress``).

``action`` chooses the operation of each Task state:

- ``package`` (PackageModel): the version's Dockerfile, requirements and OpenAPI document;
- ``compare`` (CompareChampion): the champion/challenger gate (FR-026), the champion scored by
  an evaluation job on this run's test split;
- ``deploy`` (Deploy): the endpoint serves the champion and the challenger at the plan's first
  weights (or the challenger alone: ``direct``, or a new endpoint);
- ``check`` (CheckAlarms): validation traffic from the test split, then the step's metrics
  against ``rollback_on``;
- ``shift`` (ShiftTraffic): the plan's next weights;
- ``promote`` (Promote): the challenger alone at 100 %, and the registry's champion; with a
  monitoring section or retraining triggers, the endpoint's monitoring schedule is written
  for the new champion (as for a direct deployment);
- ``rollback`` (Rollback): the champion alone at 100 %.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from agents.runtime import call_tool, logger, report_status, step
from mcp_server.core.deployment.decisions import check_alarms, compare_with_champion, objective
from mcp_server.core.deployment.metrics import VariantMetrics
from mcp_server.core.deployment.models import (
    DeploymentEvent,
    EndpointDescription,
    EndpointMetrics,
    ModelPackageFiles,
    ReplaySummary,
    ServingModel,
    VariantState,
    variant_name,
)
from mcp_server.core.deployment.plan import traffic_plan, variant_weights
from mcp_server.core.deployment.progress import DeploymentProgress, after_check
from mcp_server.core.jobs.requests import job_name
from mcp_server.core.models import EvaluationReport
from mcp_server.core.monitoring.models import MonitoringSchedule
from mcp_server.core.rendering.monitoring_text import monitoring_on_comment
from mcp_server.core.spec.schema import DeploymentSpec, TrainingSpec
from mcp_server.core.versioning import parse_version
from mcp_server.core.workflow.state import AgentEvent, WorkflowState
from mcp_server.errors import EndpointError, MlopsError, NotFoundError

#: Test-split rows replayed to the challenger at each check (one request each).
VALIDATION_ROWS = 200


def _spec(state: WorkflowState) -> tuple[TrainingSpec, DeploymentSpec]:
    spec = TrainingSpec.model_validate(state.spec)
    if spec.deployment is None:
        raise EndpointError("the deployment states run only for a spec with a deployment section")
    return spec, spec.deployment


def serving_model(state: WorkflowState) -> ServingModel:
    """The registered version as an endpoint serves it (from the state's model, job and dataset).

    Raises:
        EndpointError: the state has no registered model (a bug upstream).
    """
    model, training, dataset = state.model, state.training, state.dataset
    if model is None or training is None or training.model_uri is None:
        raise EndpointError("deploying needs the registered model and its training job in the state")
    spec = TrainingSpec.model_validate(state.spec)
    return ServingModel(
        model_name=model.name,
        version=model.version,
        semantic_version=model.semantic_version,
        model_uri=training.model_uri,
        class_labels=dataset.class_labels if dataset else None,
        algorithm=spec.algorithm,
    )


def package(event: AgentEvent) -> DeploymentProgress:
    """PackageModel: write the version's packaging beside it; the progress starts ``packaged``."""
    state = event.state
    spec, deployment = _spec(state)
    report_status(state, "packaging the model")
    model = serving_model(state)
    files = ModelPackageFiles.model_validate(
        call_tool("package_model", {"request": {"model": model.model_dump(mode="json")}})
    )
    return DeploymentProgress(
        endpoint_name=spec.endpoint_name or spec.registered_model_name,
        target=deployment.target,
        challenger=variant_name(model.version),
        challenger_version=model.semantic_version or model.version,
        status="packaged",
        package=files,
    )


def compare(event: AgentEvent) -> DeploymentProgress:
    """CompareChampion: score the endpoint's champion on this run's test split and gate the challenger.

    The champion is scored only when its feature schema is the challenger's (same major
    version); otherwise the comparison says why it was skipped and the challenger goes on.
    """
    state = event.state
    progress = _progress(state)
    spec, _ = _spec(state)
    endpoint = _describe(progress.endpoint_name)
    champion = endpoint.champion if endpoint is not None and endpoint.status != "Stopped" else None
    metric = objective(spec)
    challenger_value = state.evaluation.metrics.get(metric) if state.evaluation else None
    if champion is None or champion.name == progress.challenger:
        comparison = compare_with_champion(metric, challenger_value, None)
    elif _major(champion.model.semantic_version) != _major(progress.challenger_version):
        comparison = compare_with_champion(metric, challenger_value, None).model_copy(
            update={
                "reason": "the feature schema changed (champion "
                f"{champion.model.semantic_version}, challenger {progress.challenger_version}), so the "
                "champion cannot be scored on this test split; deployed"
            }
        )
    else:
        report_status(state, f"scoring the champion {champion.model.semantic_version} on the same test split")
        report = _evaluate_champion(state, spec, champion.model)
        comparison = compare_with_champion(metric, challenger_value, report.metrics.get(metric)).model_copy(
            update={
                "champion_version": champion.model.semantic_version,
                "champion_metrics": report.metrics,
                "challenger_metrics": state.evaluation.metrics if state.evaluation else {},
            }
        )
    if comparison.deploy:
        return progress.model_copy(update={"status": "compared", "comparison": comparison})
    return progress.model_copy(
        update={"status": "held", "comparison": comparison, "reason": comparison.reason}
    )


def deploy(event: AgentEvent) -> DeploymentProgress:
    """Deploy: the plan's first step (the champion kept beside the challenger), or the challenger alone."""
    state = event.state
    progress = _progress(state)
    spec, deployment = _spec(state)
    endpoint = _describe(progress.endpoint_name)
    live = endpoint is not None and endpoint.status != "Stopped"
    champion = endpoint.champion if live and endpoint is not None else None
    if champion is not None and champion.name == progress.challenger:
        champion = None  # the same version again (a resumed run): nothing to shift from
    plan = traffic_plan(deployment, has_champion=champion is not None)
    report_status(state, f"deploying to {progress.endpoint_name} ({plan.strategy})")
    challenger = VariantState(
        name=progress.challenger,
        model=serving_model(state),
        weight=100,
        instance_type=deployment.instance_type,
        instance_count=deployment.instance_count,
    )
    weights = variant_weights(champion.name if champion else None, challenger.name, plan.steps[0])
    variants = [
        v.model_copy(update={"weight": weights[v.name]}) for v in (champion, challenger) if v is not None
    ]
    direct = plan.strategy == "direct"
    if direct:
        variants = [challenger]
    described = _apply(
        state,
        variants,
        action="deploy",
        detail=f"{plan.strategy}: {progress.challenger_version} at {plan.steps[0]}%",
        blue_green=plan.strategy == "blue_green",
        bake_s=plan.interval_s if plan.strategy == "blue_green" else 0,
    )
    update: dict[str, Any] = {
        "url": described.url,
        "strategy": plan.strategy,
        "steps": list(plan.steps),
        "interval_s": plan.interval_s,
        "keep_both": plan.keep_both,
        "champion": champion.name if champion else None,
        "step_started_at": time.time(),
    }
    if direct:
        _set_champion(progress, spec)
        turn_on_monitoring(state, progress, spec)
        reason = "deployed directly"
        if deployment.strategy != "direct":
            reason = (
                f"no champion serves on {progress.endpoint_name}: deployed directly (the "
                f"{deployment.strategy} strategy applies once a champion serves)"
            )
        return progress.model_copy(update={**update, "status": "promoted", "reason": reason})
    return progress.model_copy(update={**update, "status": "baking"})


def check(event: AgentEvent) -> DeploymentProgress:
    """CheckAlarms: replay the test split to the challenger, then judge the step on its metrics."""
    state = event.state
    progress = _progress(state)
    _, deployment = _spec(state)
    report_status(state, f"checking the alarms at {progress.percent}% of traffic")
    sent = 0
    if deployment.validation_traffic and state.dataset is not None and "test" in state.dataset.splits:
        replay = ReplaySummary.model_validate(
            call_tool(
                "replay_validation_traffic",
                {
                    "endpoint_name": progress.endpoint_name,
                    "split_uri": state.dataset.splits["test"],
                    "feature_names": state.dataset.feature_names,
                    "target_variant": progress.challenger,
                    "max_rows": VALIDATION_ROWS,
                },
            )
        )
        sent = replay.sent
    metrics = EndpointMetrics.model_validate(
        call_tool(
            "get_endpoint_metrics",
            {"endpoint_name": progress.endpoint_name, "since": progress.step_started_at},
        )
    )
    challenger = metrics.variants.get(progress.challenger) or VariantMetrics(variant=progress.challenger)
    champion = metrics.variants.get(progress.champion) if progress.champion else None
    result = check_alarms(challenger, deployment.rollback_on)
    updated = after_check(progress, result, champion, sent)
    detail = "; ".join(result.reasons) if result.breached else f"step at {progress.percent}% passed"
    event_metrics = {progress.challenger: challenger, **({champion.variant: champion} if champion else {})}
    call_tool(
        "record_endpoint_event",
        {
            "endpoint_name": progress.endpoint_name,
            "event": DeploymentEvent(
                at=_now(), action="check", by="workflow", detail=detail, metrics=event_metrics
            ).model_dump(mode="json"),
        },
    )
    if updated.status == "ab_running":
        call_tool(
            "record_endpoint_event",
            {
                "endpoint_name": progress.endpoint_name,
                "event": DeploymentEvent(
                    at=_now(), action="compare", by="workflow", detail=updated.reason, metrics=event_metrics
                ).model_dump(mode="json"),
            },
        )
    return updated


def shift(event: AgentEvent) -> DeploymentProgress:
    """ShiftTraffic: move to the plan's next step."""
    state = event.state
    progress = _progress(state)
    index = progress.step_index + 1
    percent = progress.steps[index]
    report_status(state, f"shifting {percent}% of traffic to {progress.challenger_version}")
    weights = variant_weights(progress.champion, progress.challenger, percent)
    call_tool(
        "shift_traffic",
        {
            "endpoint_name": progress.endpoint_name,
            "weights": weights,
            "by": "workflow",
            "detail": f"{progress.strategy} step {index + 1} of {len(progress.steps)}: {percent}%",
        },
    )
    return progress.model_copy(
        update={"step_index": index, "status": "baking", "step_started_at": time.time()}
    )


def promote(event: AgentEvent) -> DeploymentProgress:
    """Promote: the challenger alone at 100 % (the champion's fleet removed), and the registry's champion."""
    state = event.state
    progress = _progress(state)
    spec, _ = _spec(state)
    report_status(state, f"promoting {progress.challenger_version}")
    endpoint = _require(progress.endpoint_name)
    challenger = endpoint.variant(progress.challenger)
    if challenger is None:
        raise EndpointError(f"endpoint {progress.endpoint_name} no longer has variant {progress.challenger}")
    _apply(
        state,
        [challenger.model_copy(update={"weight": 100})],
        action="promote",
        detail=f"{progress.challenger_version} serves 100%",
    )
    _set_champion(progress, spec)
    turn_on_monitoring(state, progress, spec)
    percents = ", ".join(f"{s.percent}%" for s in progress.steps_done)
    reason = f"promoted after {len(progress.steps_done)} step(s) ({percents})"
    return progress.model_copy(update={"status": "promoted", "reason": reason})


def rollback(event: AgentEvent) -> DeploymentProgress:
    """Rollback: the champion alone at 100 % (FR-020); the challenger's variant is removed."""
    state = event.state
    progress = _progress(state)
    report_status(state, "rolling back")
    endpoint = _require(progress.endpoint_name)
    champion = endpoint.variant(progress.champion) if progress.champion else None
    if champion is None:
        raise EndpointError(f"endpoint {progress.endpoint_name} has no champion to roll back to")
    _apply(state, [champion.model_copy(update={"weight": 100})], action="rollback", detail=progress.reason)
    return progress.model_copy(update={"status": "rolled_back"})


def _apply(
    state: WorkflowState,
    variants: list[VariantState],
    action: str,
    detail: str,
    blue_green: bool = False,
    bake_s: int = 0,
) -> EndpointDescription:
    _, deployment = _spec(state)
    desired = {
        "endpoint_name": TrainingSpec.model_validate(state.spec).endpoint_name,
        "variants": [v.model_dump(mode="json") for v in variants],
        "data_capture_percent": deployment.data_capture,
        "blue_green": blue_green,
        "bake_s": bake_s,
        "auto_scaling": deployment.auto_scaling.model_dump(mode="json") if deployment.auto_scaling else None,
        "serverless": deployment.serverless.model_dump(mode="json") if deployment.serverless else None,
        "error_rate": deployment.rollback_on.error_rate,
        "p95_latency_ms": deployment.rollback_on.p95_latency_ms,
        "action": action,
        "by": f"workflow (issue #{state.issue.number})",
        "detail": detail[:2000],
    }
    return EndpointDescription.model_validate(call_tool("deploy_model", {"desired": desired}))


def _set_champion(progress: DeploymentProgress, spec: TrainingSpec) -> None:
    version = progress.challenger.removeprefix("v")
    call_tool("set_champion", {"model_name": spec.registered_model_name, "version": version})


def turn_on_monitoring(state: WorkflowState, progress: DeploymentProgress, spec: TrainingSpec) -> None:
    """Write the endpoint's monitoring schedule for the new champion and say so on the issue.

    Only for a spec with a monitoring section or retraining triggers. The schedule carries the
    run's spec (a retrain starts from it), the champion's drift baseline, and the dataset
    source's current version (the data-change trigger compares with it).
    """
    if spec.monitoring is None and spec.retraining.triggers is None:
        return
    source = spec.dataset.source if spec.dataset else ""
    try:
        data_version = str(call_tool("get_data_version", {"source": source})) if source else ""
    except MlopsError as err:
        logger.warning("data version unreadable", extra={"error": str(err)})
        data_version = ""
    schedule = MonitoringSchedule(
        endpoint_name=progress.endpoint_name,
        model_name=spec.registered_model_name,
        model_version=progress.challenger_version,
        issue=state.issue,
        spec=state.spec,
        spec_hash=state.spec_hash,
        monitoring=spec.monitoring,
        triggers=spec.retraining.triggers,
        baseline_uri=state.evaluation.baseline_uri if state.evaluation else None,
        data_source=source,
        data_version=data_version,
        training_data_version=state.dataset.data_version if state.dataset else "",
        run_config=state.config.model_dump(mode="json"),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    call_tool("put_monitoring_schedule", {"schedule": schedule.model_dump(mode="json")})
    where = "EventBridge Scheduler" if progress.target == "sagemaker_endpoint" else "`mlops serve`"
    call_tool(
        "post_comment",
        {
            "issue_number": state.issue.number,
            "body": monitoring_on_comment(schedule, where),
            "idempotency_key": f"{state.run_id}:monitoring-on:a{state.attempt}",
        },
    )


def _evaluate_champion(state: WorkflowState, spec: TrainingSpec, champion: ServingModel) -> EvaluationReport:
    dataset = state.dataset
    if dataset is None:
        raise EndpointError("the champion is scored on the run's test split: the state has no dataset")
    request = {
        "evaluation_id": job_name(state.run_id, state.attempt, kind="champion"),
        "task": spec.task,
        "algorithm": champion.algorithm or spec.algorithm,
        "model_uri": champion.model_uri,
        "dataset": dataset.model_dump(mode="json"),
        "metrics": spec.metrics,
        "environment": spec.environment.model_dump(mode="json") if spec.environment else None,
        "max_runtime_s": spec.compute.max_runtime_s,
    }
    return EvaluationReport.model_validate(call_tool("evaluate_model", {"request": request}))


def _describe(name: str) -> EndpointDescription | None:
    try:
        return EndpointDescription.model_validate(call_tool("describe_endpoint", {"endpoint_name": name}))
    except NotFoundError:
        return None


def _require(name: str) -> EndpointDescription:
    found = _describe(name)
    if found is None:
        raise EndpointError(f"endpoint {name} does not exist any more")
    return found


def _progress(state: WorkflowState) -> DeploymentProgress:
    if state.deployment is None:
        raise EndpointError("this deployment state needs $.deployment (PackageModel runs first)")
    return state.deployment


def _major(semantic: str) -> int | None:
    try:
        return parse_version(semantic)[0]
    except ValueError:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


ACTIONS = {
    "package": package,
    "compare": compare,
    "deploy": deploy,
    "check": check,
    "shift": shift,
    "promote": promote,
    "rollback": rollback,
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``action`` chooses the operation (see the module); the DeploymentProgress as JSON.

    Raises:
        ValueError: an unknown action (a bug in the ASL).
    """
    action = event.get("action")
    if action not in ACTIONS:
        raise ValueError(f"unknown deployment action {action!r}; expected one of {', '.join(ACTIONS)}")
    return step(event, ACTIONS[action])
