"""The monitoring core: drift statistics against scipy and a worked example, Model Monitor's files,
schedule expressions, alert rules and incidents, the spec's monitoring rules, and the retrain diff."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pytest
from scipy import stats

from mcp_server.core.deployment.metrics import (
    MetricsSnapshot,
    VariantCounts,
    VariantMetrics,
    parse_prometheus,
    system_sample,
)
from mcp_server.core.models import HistoryRecord, IssueRef, RegisteredModel
from mcp_server.core.monitoring import formats
from mcp_server.core.monitoring.alerts import findings, incident_changes, retraining_reasons
from mcp_server.core.monitoring.code_change import code_change_reason, model_code_changes, model_code_folders
from mcp_server.core.monitoring.drift import (
    UNSEEN,
    bin_counts,
    categorical_drift,
    numeric_drift,
    psi,
)
from mcp_server.core.monitoring.models import MonitoringReport, MonitoringSchedule, MonitorState
from mcp_server.core.monitoring.schedule import ScheduleError, parse_schedule
from mcp_server.core.rendering.deployment_text import retraining_lines
from mcp_server.core.rendering.monitoring_text import alert_markdown, monitoring_on_comment
from mcp_server.core.spec.schema import MonitoringSpec, SpecValidationError, TriggersSpec, validate_spec
from statemachine.scheduler import due_runs
from training_containers.evaluation.baseline import build_baseline

UTC = dt.UTC


# --- drift statistics ------------------------------------------------------------------------


def test_psi_matches_the_worked_example() -> None:
    # (0.1-0.25)ln(0.4) + (0.2-0.25)ln(0.8) + (0.3-0.25)ln(1.2) + (0.4-0.25)ln(1.6)
    expected = -0.15 * math.log(0.4) - 0.05 * math.log(0.8) + 0.05 * math.log(1.2) + 0.15 * math.log(1.6)
    assert psi([0.25] * 4, [0.1, 0.2, 0.3, 0.4]) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.228218, abs=1e-6)
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_psi_of_an_empty_bin_is_finite_and_refuses_mismatched_bins() -> None:
    value = psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    assert math.isfinite(value) and value > 1
    with pytest.raises(ValueError, match="same non-zero length"):
        psi([0.5, 0.5], [1.0])


def test_bin_counts_agree_with_numpy_and_count_outliers_in_the_end_bins() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=5000)
    edges = np.quantile(values, np.linspace(0, 1, 11))
    assert bin_counts(values, edges).tolist() == np.histogram(values, bins=edges)[0].tolist()
    outside = np.array([-100.0, 100.0, edges[-1]])
    counts = bin_counts(outside, edges)
    assert counts[0] == 1 and counts[-1] == 2 and counts.sum() == 3
    assert bin_counts(outside, edges, open_ended=False).sum() == 1


def _numeric_baseline(values: np.ndarray) -> dict[str, Any]:
    import pandas as pd

    frame = pd.DataFrame({"x": values})
    return build_baseline(frame, {"x": "numeric"}, None)["features"]["x"]


def test_numeric_drift_reports_scipy_ks_on_the_baseline_sample() -> None:
    rng = np.random.default_rng(0)
    baseline = _numeric_baseline(rng.normal(size=3000))
    shifted = rng.normal(loc=1.0, size=1000)
    drift = numeric_drift("x", baseline, shifted, threshold=0.2)
    expected = stats.ks_2samp(np.asarray(baseline["sample"]), shifted)
    assert drift.test == "ks"
    assert drift.statistic == pytest.approx(expected.statistic)
    assert drift.p_value == pytest.approx(expected.pvalue)
    assert drift.drifted and drift.psi > 0.2
    assert len(baseline["sample"]) == 2000  # SAMPLE_SIZE of 3000 rows


def test_numeric_drift_of_the_same_distribution_stays_under_the_threshold() -> None:
    rng = np.random.default_rng(1)
    baseline = _numeric_baseline(rng.normal(size=5000))
    drift = numeric_drift("x", baseline, rng.normal(size=5000), threshold=0.2)
    assert not drift.drifted and drift.psi < 0.05
    assert sum(drift.current_shares.values()) == pytest.approx(1.0)


def test_numeric_drift_counts_missing_values_and_handles_no_values() -> None:
    baseline = _numeric_baseline(np.arange(100.0))
    drift = numeric_drift("x", baseline, np.array([np.nan, 1.0, 2.0, np.nan]), threshold=0.2)
    assert drift.rows == 2 and drift.missing_fraction == 0.5
    empty = numeric_drift("x", baseline, np.array([np.nan]), threshold=0.2)
    assert empty.rows == 0 and empty.psi == 0.0 and not empty.drifted


def test_categorical_drift_matches_scipy_chisquare_and_pools_unseen_categories() -> None:
    baseline = {"frequencies": {"a": 0.5, "b": 0.3, "c": 0.2}}
    current = ["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["z"] * 10
    drift = categorical_drift("colour", baseline, current, threshold=0.2)
    counts = np.array([20, 30, 40, 10], dtype=float)
    expected = np.array([0.5, 0.3, 0.2, 1e-4])
    expected = expected / expected.sum() * counts.sum()
    reference = stats.chisquare(counts, expected)
    assert drift.test == "chi_squared"
    assert drift.statistic == pytest.approx(reference.statistic)
    assert drift.p_value == pytest.approx(reference.pvalue)
    assert drift.current_shares[UNSEEN] == pytest.approx(0.1)
    assert drift.drifted


# --- Model Monitor's files -------------------------------------------------------------------


def test_statistics_constraints_and_violations_follow_model_monitor_formats() -> None:
    import pandas as pd

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], size=500)})
    baseline = build_baseline(frame, {"x": "numeric", "c": "categorical"}, None)
    statistics = formats.statistics(baseline)
    assert statistics["dataset"]["item_count"] == 500
    numeric, categorical = statistics["features"]
    assert numeric["inferred_type"] == "Fractional"
    assert numeric["numerical_statistics"]["common"] == {"num_present": 500, "num_missing": 0}
    assert sum(b["count"] for b in numeric["numerical_statistics"]["distribution"]["kll"]["buckets"]) == 500
    assert categorical["string_statistics"]["distinct_count"] == 2
    constraints = formats.constraints(baseline, 0.2)
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.2
    assert set(constraints["features"][1]["string_constraints"]["domains"]) == {"a", "b"}
    drifted = numeric_drift("x", baseline["features"]["x"], rng.normal(loc=3, size=200), 0.2)
    current = build_baseline(
        frame.assign(x=np.where(np.arange(500) < 100, np.nan, frame["x"])),
        {"x": "numeric", "c": "categorical"},
        None,
    )
    found = formats.violations(baseline, current, [drifted], missing_columns=["y"])["violations"]
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in found}
    assert kinds == {
        ("x", "baseline_drift_check"),
        ("x", "completeness_check"),
        ("y", "missing_column_check"),
    }


# --- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(1 hour)", "2026-12-05T10:17:00", "2026-12-05T11:17:00"),
        ("rate(5 minutes)", "2026-12-05T10:17:00", "2026-12-05T10:22:00"),
        ("rate(7 days)", "2026-12-05T10:00:00", "2026-12-12T10:00:00"),
        ("cron(0 6 * * ? *)", "2026-12-05T10:17:00", "2026-12-06T06:00:00"),
        ("cron(0/15 * * * ? *)", "2026-12-05T10:17:00", "2026-12-05T10:30:00"),
        (
            "cron(30 8 ? * MON-FRI *)",
            "2026-12-05T10:00:00",
            "2026-12-07T08:30:00",
        ),  # 5 Dec 2026 is a Saturday
        ("cron(0 0 L * ? *)", "2026-02-03T00:00:00", "2026-02-28T00:00:00"),
        ("cron(0 12 1 JAN,JUL ? 2027)", "2026-12-05T00:00:00", "2027-01-01T12:00:00"),
    ],
)
def test_next_runs_follow_eventbridge_semantics(expression: str, after: str, expected: str) -> None:
    start = dt.datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert parse_schedule(expression).next_run(start) == dt.datetime.fromisoformat(expected).replace(
        tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 hours)", r"write rate\(1 hour\)"),
        ("rate(2 weeks)", r"unknown unit 'weeks'"),
        ("rate(0 minutes)", r"positive integer"),
        ("cron(0 6 * * *)", r"has 5 fields"),
        ("cron(0 6 * * * *)", r"exactly one of DAY-OF-MONTH and DAY-OF-WEEK must be \?"),
        ("cron(61 6 * * ? *)", r"minutes '61' is not in 0-59"),
        ("cron(0 6 ? * 2#1 *)", r"uses W, # or L"),
        ("every hour", r"not a schedule expression"),
        ("cron(0 0 31 2 ? *)", None),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str | None) -> None:
    if message is None:  # parses, but never runs: next_run says so
        with pytest.raises(ScheduleError, match="never runs"):
            parse_schedule(expression).next_run(dt.datetime(2026, 1, 1, tzinfo=UTC))
        return
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expression)


# --- the spec --------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "model_type": "supervised_learning",
    "task": "classification",
    "algorithm": "xgboost",
    "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
    "deployment": {"strategy": "direct"},
}


def test_a_monitored_spec_with_triggers_validates_with_defaults() -> None:
    spec = validate_spec(
        {
            **BASE,
            "monitoring": {
                "metric_floor": {"f1": 0.85},
                "alerts": {"slack": True, "email": ["ml@example.com"]},
            },
            "retraining": {
                "triggers": {"schedule": "cron(0 6 ? * MON *)", "drift_psi": 0.3, "data_change": True}
            },
        }
    )
    assert spec.monitoring is not None and spec.monitoring.schedule == "rate(1 hour)"
    assert spec.monitoring.drift_psi == 0.2 and spec.monitoring.alerts.github
    assert spec.retraining.triggers is not None and spec.retraining.triggers.data_change


@pytest.mark.parametrize(
    ("changes", "path", "pattern"),
    [
        ({"monitoring": {"schedule": "rate(1 hours)"}}, "monitoring.schedule", r"rate\(1 hour\)"),
        (
            {"monitoring": {"metric_floor": {"rmse": 1}}},
            "monitoring.metric_floor.rmse",
            r"not a metric of this task",
        ),
        (
            {"monitoring": {"metric_floor": {"f1": 2}}},
            "monitoring.metric_floor.f1",
            r"fraction between 0 and 1",
        ),
        (
            {"monitoring": {"alerts": {"email": ["not-an-address"]}}},
            "monitoring.alerts.email",
            r"e-mail address",
        ),
        ({"monitoring": {}, "deployment": None}, "monitoring", r"add a deployment section"),
        ({"monitoring": {}, "deployment": {"data_capture": 0}}, "monitoring", r"data_capture is 0"),
        ({"retraining": {"triggers": {"schedule": "cron(x)"}}}, "retraining.triggers.schedule", r"fields"),
        (
            {"retraining": {"triggers": {"code_change": True}}, "deployment": None},
            "retraining.triggers",
            r"add a deployment section",
        ),
        (
            {"retraining": {"triggers": {"metric_floor": {"f1": 0.9}}}},
            "retraining.triggers.metric_floor",
            r"monitoring",
        ),
    ],
)
def test_monitoring_errors_name_their_field(changes: dict[str, Any], path: str, pattern: str) -> None:
    data = {**BASE, **changes}
    with pytest.raises(SpecValidationError) as caught:
        validate_spec({k: v for k, v in data.items() if v is not None})
    matching = [e for e in caught.value.errors if e.path == path]
    assert matching, [e.path for e in caught.value.errors]
    assert re.search(pattern, matching[0].message)


# --- alert rules and incidents ---------------------------------------------------------------


def _report(
    psis: dict[str, float], quality: dict[str, float] | None = None, bad: int = 0
) -> MonitoringReport:
    features = [
        {
            "feature": name,
            "kind": "numeric",
            "rows": 100,
            "psi": value,
            "drifted": value > 0.2,
            "threshold": 0.2,
        }
        for name, value in psis.items()
    ]
    return MonitoringReport.model_validate(
        {
            "job_name": "mon-e-1",
            "endpoint_name": "e",
            "status": "Completed",
            "until": "2026-12-05T10:00:00Z",
            "rows": 100,
            "bad_lines": bad,
            "features": features,
            "quality": quality or {},
            "labelled_rows": 50 if quality else 0,
        }
    )


def test_findings_cover_drift_quality_traffic_and_unreadable_capture() -> None:
    monitoring = MonitoringSpec(metric_floor={"f1": 0.9, "log_loss": 0.3}, error_rate=0.01, p95_latency_ms=50)
    report = _report({"a": 0.5, "b": 0.1, "c": 0.3}, {"f1": 0.8, "log_loss": 0.5}, bad=2)
    traffic = {"v1": VariantMetrics(variant="v1", requests=100, errors_5xx=5, error_rate=0.05, p95_ms=80)}
    found = {f.key: f for f in findings(report, monitoring, traffic)}
    assert set(found) == {
        "drift",
        "metric_floor:f1",
        "metric_floor:log_loss",
        "error_rate:v1",
        "p95_latency:v1",
        "capture",
    }
    assert found["drift"].summary.startswith(
        "2 feature(s) drifted past PSI 0.2: a (PSI 0.500), c (PSI 0.300)"
    )
    assert "above its ceiling" in found["metric_floor:log_loss"].summary  # lower is better
    quiet = findings(_report({"a": 0.1}, {"f1": 0.95}), monitoring, {"v1": VariantMetrics(variant="v1")})
    assert quiet == []


def test_an_incident_is_alerted_once_and_resolved_once() -> None:
    first = findings(_report({"a": 0.5}), MonitoringSpec())
    opened, resolved, after = incident_changes({}, first, "t1")
    assert [f.key for f in opened] == ["drift"] and resolved == [] and after["drift"].opened_at == "t1"
    opened, resolved, after = incident_changes(after, first, "t2")
    assert opened == [] and resolved == [] and after["drift"].last_seen_at == "t2"
    opened, resolved, after = incident_changes(after, [], "t3")
    assert opened == [] and [i.key for i in resolved] == ["drift"] and after == {}


def test_retraining_reasons_fire_on_their_own_thresholds() -> None:
    report = _report({"a": 0.35}, {"f1": 0.7})
    assert retraining_reasons(report, None) == []
    reasons = retraining_reasons(report, TriggersSpec(drift_psi=0.3, metric_floor={"f1": 0.75}))
    assert [kind for kind, _ in reasons] == ["drift", "metric_floor"]
    assert retraining_reasons(report, TriggersSpec(drift_psi=0.4)) == []


# --- the local scheduler's due runs ----------------------------------------------------------


def _schedule(**changes: Any) -> MonitoringSchedule:
    spec = validate_spec({**BASE, "monitoring": {"schedule": "rate(1 hour)"}})
    values: dict[str, Any] = {
        "endpoint_name": "bc",
        "model_name": "bc",
        "issue": IssueRef(number=3),
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec.spec_hash(),
        "monitoring": spec.monitoring,
        "created_at": "2026-12-05T10:00:00Z",
    }
    return MonitoringSchedule(**{**values, **changes})


def test_due_runs_follow_the_schedule_from_the_last_window() -> None:
    schedule = _schedule(triggers=TriggersSpec(schedule="rate(1 day)"))
    state = MonitorState()
    at = dt.datetime(2026, 12, 5, 10, 59, tzinfo=UTC)
    assert due_runs(schedule, state, at) == []
    due = due_runs(schedule, state, dt.datetime(2026, 12, 5, 11, 0, 30, tzinfo=UTC))
    assert [(d.name, d.input) for d in due] == [("monitor-bc-20261205110000", {"endpoint_name": "bc"})]
    later = MonitorState(last_until="2026-12-05T11:00:00Z")
    due = due_runs(schedule, later, dt.datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    assert [d.input.get("trigger") for d in due] == [None, "schedule"]
    no_monitoring = _schedule(monitoring=None, triggers=TriggersSpec(data_change=True))
    assert no_monitoring.check_expression == "rate(1 hour)"
    assert _schedule(monitoring=None).check_expression is None


# --- what is said ----------------------------------------------------------------------------


def test_the_alert_shows_the_drifted_features_plots_and_next_step() -> None:
    schedule = _schedule(model_version="1.0.0")
    report = _report({"mean radius": 4.27, "b": 0.01})
    found = findings(report, MonitoringSpec())
    text = alert_markdown(
        schedule,
        report,
        found,
        "https://x/report.md",
        {"plots/drift_mean_radius.png": "https://x/p.png"},
        "A retrain run starts now.",
    )
    assert "| mean radius | 4.2700 |" in text and "| b |" not in text
    assert "![mean_radius: baseline against captured](https://x/p.png)" in text
    assert text.rstrip().endswith("A retrain run starts now.")
    on = monitoring_on_comment(schedule, "`mlops serve`")
    assert "Schedule: `rate(1 hour)` (UTC), run by `mlops serve`" in on and "Retraining: none" in on


def retrain_record(version: str, semantic_version: str, **fields: Any) -> HistoryRecord:
    """A succeeded retrain's record of model ``bc`` (issue 3, spec hash ``abc``)."""
    return HistoryRecord(
        record_id="r-a1",
        issue=IssueRef(number=3),
        status="succeeded",
        spec={},
        spec_hash="abc",
        model=RegisteredModel(
            name="bc", version=version, semantic_version=semantic_version, model_uri=f"models:/bc/{version}"
        ),
        started_at="2026-12-05T10:00:00Z",
        finished_at="2026-12-05T10:01:00Z",
        **fields,
    )


def test_a_retrain_record_shows_the_version_diff() -> None:
    record = retrain_record(
        "2",
        "1.0.1",
        trigger={
            "kind": "drift",
            "reason": "1 feature(s) over PSI 0.5",
            "monitoring_job": "mon-bc-1",
            "endpoint_name": "bc",
            "previous_version": "1.0.0",
            "previous_spec_hash": "abc",
        },
        deployment={
            "endpoint_name": "bc",
            "target": "local",
            "challenger": "v2",
            "status": "promoted",
            "comparison": {
                "metric": "f1",
                "challenger": 0.97,
                "champion": 0.95,
                "deploy": True,
                "reason": "better",
                "champion_version": "1.0.0",
                "champion_metrics": {"f1": 0.95},
                "challenger_metrics": {"f1": 0.97},
            },
        },
    )
    lines = retraining_lines(record)
    assert lines[0] == "**Retraining (drift trigger)**: 1 feature(s) over PSI 0.5"
    assert "- Version 1.0.0 → 1.0.1 (patch: only the data changed)" in lines
    assert "- Spec: unchanged (`abc`)" in lines
    assert "| f1 | 0.9500 | 0.9700 |" in lines
    assert retraining_lines(record.model_copy(update={"trigger": None})) == []


def test_a_code_change_retrain_on_the_same_data_and_its_feedback_are_said_so() -> None:
    from mcp_server.core.models import DatasetRef

    dataset = DatasetRef(
        dataset_id="bc-d1",
        name="bc",
        source="sklearn://breast_cancer",
        data_version="d1",
        uri="file:///d",
        splits={},
        split_sizes={},
        task="classification",
        target="target",
        feature_names=[],
        feature_types={},
        rows_raw=700,
        rows_feedback=131,
        rows_removed={"feedback": 2},
    )
    record = retrain_record(
        "3",
        "1.0.2",
        dataset=dataset,
        trigger={
            "kind": "code_change",
            "reason": "push 1a2b3c4 to main by dana changed training_containers/xgboost/train.py",
            "previous_version": "1.0.1",
            "previous_data_version": "d1",
            "feedback_uri": "file:///ws/monitoring/bc/jobs/mon-bc-7/output/feedback.parquet",
            "feedback_rows": 133,
        },
    )
    lines = retraining_lines(record)
    assert lines[0].startswith("**Retraining (code change trigger)**: push 1a2b3c4 to main by dana")
    assert "- Version 1.0.1 → 1.0.2 (patch: the same spec and data, retrained)" in lines
    assert "- Data version: unchanged (`d1`)" in lines
    assert (
        "- Feedback: 131 labelled captured row(s) added to the data "
        "(2 dropped: their label is not a value of the target), from `mon-bc-7`"
    ) in lines


# --- the code-change trigger -----------------------------------------------------------------


def test_a_models_code_is_the_shared_folders_and_its_familys():
    paths = [
        "training_containers/sklearn/train.py",
        "training_containers/pytorch/net.py",
        "training_containers/common/metrics.py",
        "training_containers/monitoring/monitor.py",
        "README.md",
    ]
    assert model_code_changes(paths, "random_forest") == [paths[0], paths[2]]
    assert model_code_changes(paths, "neural_network") == [paths[1], paths[2]]
    assert model_code_changes(["training_containers/monitoring/monitor.py"], "xgboost") == []
    assert "training_containers/inference/" in model_code_folders("ppo")
    assert "training_containers/rl/" in model_code_folders("ppo")
    with pytest.raises(KeyError):
        model_code_folders("no_such_algorithm")


def test_the_code_change_reason_names_the_push_and_at_most_five_paths():
    changed = [f"training_containers/sklearn/f{i}.py" for i in range(7)]
    reason = code_change_reason(changed, "6113728f27ae82c7", "main", "alice")
    assert reason.startswith("push 6113728 to main by alice changed training_containers/sklearn/f0.py, ")
    assert reason.endswith("f4.py and 2 more")


def test_a_spec_may_now_ask_for_the_code_change_trigger():
    spec = validate_spec({**BASE, "retraining": {"triggers": {"code_change": True}}})
    assert spec.retraining.triggers is not None and spec.retraining.triggers.code_change


# --- system metrics over time ----------------------------------------------------------------


def _counts(ok: float, failed: float, buckets: list[tuple[float, float]]) -> VariantCounts:
    return VariantCounts(responses={"2xx": ok, "5xx": failed}, buckets=buckets)


def test_a_system_sample_sums_the_variants_over_the_window_between_two_snapshots():
    earlier = MetricsSnapshot(
        at=100.0,
        variants={"a": _counts(10, 0, [(0.01, 10), (0.1, 10), (math.inf, 10)])},
        cpu_seconds=2.0,
        memory_bytes=50 * 2**20,
    )
    current = MetricsSnapshot(
        at=110.0,
        variants={
            "a": _counts(40, 1, [(0.01, 30), (0.1, 41), (math.inf, 41)]),
            "b": _counts(9, 0, [(0.01, 0), (0.1, 9), (math.inf, 9)]),
        },
        cpu_seconds=4.5,
        memory_bytes=60 * 2**20,
    )
    sample = system_sample(current, earlier)
    # window: a answered 31 (30 ok, 1 failed), b 9: 40 in 10 s
    assert (sample.requests, sample.errors_5xx, sample.rps, sample.window_s) == (40, 1, 4.0, 10.0)
    assert sample.cpu_percent == 25.0  # 2.5 CPU seconds in 10 s
    assert sample.memory_mb == 60.0
    # 20 of the 40 answered within 10 ms: the median is that bucket's upper bound
    assert sample.p50_ms == pytest.approx(10.0)
    assert 10.0 < sample.p95_ms <= 100.0


def test_a_restarted_server_counts_from_zero_and_its_cpu_use_is_unknown():
    earlier = MetricsSnapshot(at=0.0, variants={"a": _counts(100, 0, [(math.inf, 100)])}, cpu_seconds=50.0)
    current = MetricsSnapshot(at=5.0, variants={"a": _counts(3, 0, [(math.inf, 3)])}, cpu_seconds=1.0)
    sample = system_sample(current, earlier)
    assert sample.requests == 3 and sample.cpu_percent is None and sample.memory_mb is None
    with pytest.raises(ValueError, match="out of order"):
        system_sample(earlier, current)


def test_the_servers_process_metrics_are_read_from_prometheus_text():
    from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    snapshot = parse_prometheus(generate_latest(registry).decode(), 1.0)
    assert snapshot.cpu_seconds is not None and snapshot.cpu_seconds > 0
    assert snapshot.memory_bytes is not None and snapshot.memory_bytes > 10 * 2**20
    assert snapshot.variants == {}


# --- feedback into training ------------------------------------------------------------------


def test_feedback_needs_a_supervised_task_monitoring_and_a_trigger():
    triggers = {"drift_psi": 0.3}
    ok = validate_spec({**BASE, "monitoring": {}, "retraining": {"feedback": True, "triggers": triggers}})
    assert ok.retraining.feedback
    cases = [
        (
            {"retraining": {"feedback": True, "triggers": {"schedule": "rate(1 day)"}}},
            r"add a monitoring section",
        ),
        ({"monitoring": {}, "retraining": {"feedback": True}}, r"add retraining.triggers"),
        (
            {
                "model_type": "unsupervised_learning",
                "task": "clustering",
                "algorithm": "kmeans",
                "dataset": {"source": "sklearn://iris"},
                "monitoring": {},
                "retraining": {"feedback": True, "triggers": {"schedule": "rate(1 day)"}},
            },
            r"supervised models only",
        ),
    ]
    for changes, pattern in cases:
        with pytest.raises(SpecValidationError) as caught:
            validate_spec({**BASE, **changes})
        [error] = [e for e in caught.value.errors if e.path == "retraining.feedback"]
        assert re.search(pattern, error.message), error.message
