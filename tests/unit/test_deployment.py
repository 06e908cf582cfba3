"""Deployment logic: the spec's deployment section, traffic plans, metrics, alarms, the gate, rollback."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mcp_server.core.deployment.decisions import check_alarms, compare_with_champion, objective
from mcp_server.core.deployment.metrics import (
    MetricsSnapshot,
    VariantCounts,
    VariantMetrics,
    histogram_quantile,
    parse_prometheus,
    window,
)
from mcp_server.core.deployment.models import (
    EndpointDescription,
    ServingModel,
    VariantState,
    rollback_variants,
    served_after,
    variant_name,
)
from mcp_server.core.deployment.plan import linear_steps, traffic_plan, variant_weights
from mcp_server.core.spec.schema import DeploymentSpec, RollbackSpec, validate_spec
from tests.unit.test_spec import errors_for, spec_with


def deployment(**fields: Any) -> DeploymentSpec:
    return validate_spec(spec_with(deployment=fields)).deployment  # type: ignore[return-value]


# -- the spec ---------------------------------------------------------------------------------------


def test_a_deployment_section_validates_with_defaults_and_names_the_endpoint():
    spec = validate_spec(spec_with(deployment={"strategy": "canary", "canary": {"steps": [5, 100]}}))
    assert spec.deployment is not None and spec.deployment.canary is not None
    assert spec.deployment.canary.steps == [5, 100]
    assert spec.deployment.rollback_on.error_rate == 0.01 and spec.deployment.validation_traffic
    assert spec.endpoint_name == spec.registered_model_name
    named = validate_spec(spec_with(deployment={"endpoint_name": "churn-prod"}))
    assert named.endpoint_name == "churn-prod"


@pytest.mark.parametrize(
    ("section", "path", "pattern"),
    [
        ({"strategy": "canary", "linear": {"step_percent": 10}}, "deployment.linear", r"strategy is canary"),
        (
            {"strategy": "rolling"},
            "deployment.strategy",
            r"'direct', 'ab', 'canary', 'linear' or 'blue_green'",
        ),
        (
            {"strategy": "canary", "canary": {"steps": [50, 10]}},
            "deployment.canary.steps",
            r"strictly increasing",
        ),
        ({"strategy": "linear", "linear": {"step_percent": 0}}, "deployment.linear.step_percent", r"1"),
        ({"rollback_on": {"error_rate": 5}}, "deployment.rollback_on.error_rate", r"1"),
        ({"data_capture": 150}, "deployment.data_capture", r"100"),
        ({"serverless": {"memory_mb": 1000}}, "deployment.serverless.memory_mb", r"1024, 2048"),
        ({"target": "kubernetes"}, "deployment.target", r"'local' or 'sagemaker_endpoint'"),
        ({"endpoint_name": "bad name!"}, "deployment.endpoint_name", r""),
        ({"instance_type": "m5.large"}, "deployment.instance_type", r""),
    ],
)
def test_each_deployment_error_names_its_field(section, path, pattern):
    errors = {e.path: e for e in errors_for(spec_with(deployment=section))}
    assert path in errors, errors
    assert re.search(pattern, errors[path].message)


def test_serverless_is_sagemaker_only_one_variant_and_no_capture():
    errors = {
        e.path: e.message
        for e in errors_for(
            spec_with(deployment={"strategy": "canary", "serverless": {}, "auto_scaling": {}})
        )
    }
    assert "needs target: sagemaker_endpoint" in errors["deployment.serverless"]
    assert "direct or blue_green" in errors["deployment.strategy"]
    assert "does not capture data" in errors["deployment.data_capture"]
    assert "max_concurrency" in errors["deployment.auto_scaling"]
    ok = validate_spec(
        spec_with(
            deployment={"target": "sagemaker_endpoint", "serverless": {"memory_mb": 4096}, "data_capture": 0}
        )
    )
    assert ok.deployment is not None and ok.deployment.serverless is not None


# -- plans ------------------------------------------------------------------------------------------


def test_each_strategy_has_its_plan_and_a_first_model_is_direct():
    assert traffic_plan(deployment(strategy="canary"), True).steps == (10, 50, 100)
    linear = traffic_plan(deployment(strategy="linear", linear={"step_percent": 30, "interval_s": 5}), True)
    assert (linear.steps, linear.interval_s) == ((30, 60, 90, 100), 5)
    ab = traffic_plan(deployment(strategy="ab", ab={"challenger_percent": 20}), True)
    assert ab.steps == (20,) and ab.keep_both
    assert traffic_plan(deployment(strategy="blue_green"), True).steps == (100,)
    first = traffic_plan(deployment(strategy="canary"), has_champion=False)
    assert (first.strategy, first.steps, first.interval_s) == ("direct", (100,), 0)


def test_linear_steps_and_weights():
    assert linear_steps(25) == (25, 50, 75, 100)
    assert linear_steps(100) == (100,)
    with pytest.raises(ValueError, match="step_percent must be in 1..100"):
        linear_steps(0)
    assert variant_weights("v1", "v2", 10) == {"v1": 90, "v2": 10}
    assert variant_weights("v1", "v2", 100) == {"v1": 0, "v2": 100}
    assert variant_weights(None, "v2", 10) == {"v2": 100}


# -- metrics ----------------------------------------------------------------------------------------

PROMETHEUS = """\
# TYPE endpoint_latency_seconds histogram
endpoint_latency_seconds_bucket{endpoint="e",variant="v1",le="0.001"} 10.0
endpoint_latency_seconds_bucket{endpoint="e",variant="v1",le="0.01"} 90.0
endpoint_latency_seconds_bucket{endpoint="e",variant="v1",le="0.1"} 100.0
endpoint_latency_seconds_bucket{endpoint="e",variant="v1",le="+Inf"} 100.0
endpoint_latency_seconds_count{endpoint="e",variant="v1"} 100.0
endpoint_latency_seconds_sum{endpoint="e",variant="v1"} 0.5
endpoint_latency_seconds_bucket{endpoint="other",variant="v1",le="+Inf"} 7.0
# TYPE endpoint_responses counter
endpoint_responses_total{endpoint="e",variant="v1",status="2xx"} 95.0
endpoint_responses_total{endpoint="e",variant="v1",status="4xx"} 3.0
endpoint_responses_total{endpoint="e",variant="v1",status="5xx"} 2.0
"""


def test_prometheus_text_becomes_counts_and_percentiles():
    snapshot = parse_prometheus(PROMETHEUS, at=100.0, endpoint="e")
    [(name, metrics)] = window(snapshot, None).items()
    assert name == "v1"
    assert (metrics.requests, metrics.errors_4xx, metrics.errors_5xx) == (100, 3, 2)
    assert metrics.error_rate == pytest.approx(0.02)
    # rank 50 of 100 falls in (1 ms, 10 ms] holding ranks 11..90: 1 + 9 * 40/80 = 5.5 ms
    assert metrics.p50_ms == pytest.approx(5.5)
    assert metrics.p95_ms == pytest.approx(55.0)  # (10 ms, 100 ms]: 10 + 90 * 5/10
    assert metrics.rps is None


def test_histogram_quantile_edges():
    assert histogram_quantile(0.5, []) is None
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1  # in +Inf: the last bound


def test_a_window_subtracts_the_earlier_snapshot_and_survives_a_restart():
    def snapshot(at: float, ok: float, failed: float, fast: float) -> MetricsSnapshot:
        buckets = [(0.01, fast), (float("inf"), ok + failed)]
        return MetricsSnapshot(
            at=at, variants={"v2": VariantCounts(responses={"2xx": ok, "5xx": failed}, buckets=buckets)}
        )

    later = window(snapshot(160, 150, 10, 150), snapshot(100, 100, 0, 100))["v2"]
    assert (later.requests, later.errors_5xx, later.rps) == (60, 10, 1.0)
    assert later.error_rate == pytest.approx(10 / 60)
    restarted = window(snapshot(160, 5, 0, 5), snapshot(100, 100, 0, 100))["v2"]
    assert restarted.requests == 5  # the counters went down: the server restarted


# -- decisions --------------------------------------------------------------------------------------


def test_alarms_breach_on_error_rate_or_p95_and_not_without_requests():
    limits = RollbackSpec(error_rate=0.01, p95_latency_ms=50)
    bad = check_alarms(
        VariantMetrics(variant="v2", requests=100, errors_5xx=3, error_rate=0.03, p95_ms=80), limits
    )
    assert bad.breached and len(bad.reasons) == 2
    assert "error rate 3.00% (3 of 100 requests failed)" in bad.reasons[0]
    assert "p95 latency 80.0 ms" in bad.reasons[1]
    assert not check_alarms(VariantMetrics(variant="v2"), limits).breached
    assert not check_alarms(VariantMetrics(variant="v2", requests=100, p95_ms=50), limits).breached


def test_the_champion_gate_honours_the_metrics_direction():
    assert compare_with_champion("f1", 0.90, 0.91).deploy is False
    assert "held back (comment /deploy" in compare_with_champion("f1", 0.90, 0.91).reason
    assert compare_with_champion("f1", 0.91, 0.91).deploy is True
    assert compare_with_champion("rmse", 3.0, 3.5).deploy is True
    assert compare_with_champion("rmse", 4.0, 3.5).deploy is False
    assert compare_with_champion("f1", 0.5, None).reason == "no champion to compare with"


def test_the_objective_is_the_tuning_objective_then_a_threshold_then_the_first_metric():
    assert objective(validate_spec(spec_with(evaluation={"thresholds": {"roc_auc": 0.9}}))) == "roc_auc"
    assert objective(validate_spec(spec_with())) == validate_spec(spec_with()).metrics[0]


# -- rollback ---------------------------------------------------------------------------------------


def served(number: str) -> ServingModel:
    return ServingModel(
        model_name="m", version=number, semantic_version=f"1.{number}.0", model_uri="u", model_data="d"
    )


def endpoint(variants: list[tuple[str, float]], history: list[str]) -> EndpointDescription:
    states = [VariantState(name=f"v{n}", model=served(n), weight=w) for n, w in variants]
    return EndpointDescription(
        name="e",
        target="local",
        status="InService",
        model_name="m",
        variants=states,
        served_models=[served(n) for n in history],
    )


def test_rollback_returns_to_the_champion_during_a_shift_and_to_the_previous_model_after():
    during, summary = rollback_variants(endpoint([("1", 90), ("2", 10)], ["1", "2"]))
    assert (during.name, during.weight, summary) == ("v1", 100, "back to 1.1.0")
    after, _ = rollback_variants(endpoint([("2", 100)], ["1", "2"]))
    assert after.name == "v1"
    named, _ = rollback_variants(endpoint([("3", 100)], ["1", "2", "3"]), "1.1.0")
    assert named.name == "v1"
    assert rollback_variants(endpoint([("3", 100)], ["1", "2", "3"]), "v2")[0].name == "v2"
    with pytest.raises(ValueError, match=r"never served version 9.9.9 \(it served 1.1.0, 1.3.0\)"):
        rollback_variants(endpoint([("3", 100)], ["1", "3"]), "9.9.9")
    with pytest.raises(ValueError, match="nothing to roll back to"):
        rollback_variants(endpoint([("1", 100)], ["1"]))


def test_served_models_keep_the_newest_last_without_repeats_and_variant_names():
    variants = [VariantState(name="v1", model=served("1"), weight=100)]
    assert [m.version for m in served_after([served("1"), served("2")], variants)] == ["2", "1"]
    assert variant_name("arn:aws:sagemaker:us-east-1:1:model-package/churn/12") == "v12"
    with pytest.raises(ValueError, match="does not end with a number"):
        variant_name("latest")


# -- progress and its rendering ---------------------------------------------------------------------


def progress(**fields: Any) -> Any:
    from mcp_server.core.deployment.progress import DeploymentProgress

    base = {
        "endpoint_name": "e", "target": "local", "strategy": "canary", "steps": [10, 50, 100],
        "champion": "v1", "challenger": "v2", "challenger_version": "1.1.0", "status": "baking",
    }  # fmt: skip
    return DeploymentProgress(**{**base, **fields})


def test_a_checked_step_rolls_back_shifts_promotes_or_keeps_both():
    from mcp_server.core.deployment.progress import after_check

    limits = RollbackSpec(error_rate=0.01)
    bad = check_alarms(VariantMetrics(variant="v2", requests=50, errors_5xx=5, error_rate=0.1), limits)
    good = check_alarms(VariantMetrics(variant="v2", requests=50, p95_ms=3.0), limits)
    rolled = after_check(progress(step_index=1), bad)
    assert rolled.status == "rollback" and rolled.reason.startswith(
        "rolled back at 50% of traffic: error rate"
    )
    assert after_check(progress(), good).status == "shifting"
    assert after_check(progress(step_index=2), good).status == "promote"
    ab = after_check(progress(strategy="ab", steps=[30], keep_both=True), good, VariantMetrics(variant="v1"))
    assert ab.status == "ab_running"
    assert ab.reason == (
        "A/B at 30% to the challenger: challenger 50 requests, error rate 0.00%, p95 3.0 ms; "
        "champion no requests"
    )
    assert [s.percent for s in ab.steps_done] == [30]


def test_the_comment_and_record_say_what_the_deployment_did():
    from mcp_server.core.deployment.decisions import compare_with_champion
    from mcp_server.core.models import HistoryRecord, IssueRef
    from mcp_server.core.rendering.deployment_text import deployment_lines, deployment_section, package_files

    held = progress(status="held", comparison=compare_with_champion("f1", 0.8, 0.9))
    record = HistoryRecord(
        record_id="r-a1", issue=IssueRef(number=3, title="t"), status="succeeded", spec={}, spec_hash="h",
        started_at="2026-12-04T10:00:00+00:00", finished_at="2026-12-04T10:01:00+00:00",
        deployment=held.model_dump(mode="json"),
    )  # fmt: skip
    lines = deployment_lines(record)
    assert lines[0] == "**Deployment: held back: the champion keeps serving**"
    assert "- Comment `/deploy` to deploy it anyway." in lines
    assert package_files(record) == {}
    section = deployment_section(record, {})
    assert section.startswith("## Deployment") and "Held back" in section
    assert deployment_lines(record.model_copy(update={"deployment": None})) == []
