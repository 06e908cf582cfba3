"""Rendering of history records and of the run index (pure, no I/O)."""

from __future__ import annotations

import json

import pytest
import yaml

from mcp_server.core.judge.verdict import judge
from mcp_server.core.models import (
    DatasetRef,
    EvaluationReport,
    FairnessReport,
    FeatureImportance,
    HistoryRecord,
    IssueRef,
    RegisteredModel,
    ShapSummary,
    TrainingJob,
)
from mcp_server.core.rendering.history_markdown import (
    front_matter,
    record_front_matter,
    record_stem,
    render_index,
    render_record,
    safe_name,
)

SPEC = {
    "model_type": "supervised_learning",
    "task": "classification",
    "algorithm": "random_forest",
    "model_name": "breast-cancer-classification",
    "dataset": {"source": "sklearn://breast_cancer", "name": "breast_cancer"},
    "hyperparameters": {"n_estimators": 200, "max_depth": 8},
    "evaluation": {"metrics": ["accuracy", "f1"], "thresholds": {"accuracy": 0.9, "log_loss": 0.2}},
}


def make_record(status: str = "succeeded", **overrides: object) -> HistoryRecord:
    values: dict[str, object] = {
        "record_id": "exec-12-abc",
        "issue": IssueRef(
            number=12,
            title="Train breast cancer classifier",
            url="https://github.com/acme/models/issues/12",
            author="alice",
            repository="acme/models",
        ),
        "status": status,
        "attempt": 1,
        "spec": SPEC,
        "spec_hash": "0123456789ab",
        "dataset": DatasetRef(
            dataset_id="breast_cancer-a1b2c3d4e5f6",
            name="breast_cancer",
            source="sklearn://breast_cancer",
            data_version="a1b2c3d4e5f6",
            uri="file:///ws/datasets/breast_cancer-a1b2c3d4e5f6",
            splits={"train": "file:///ws/t", "validation": "file:///ws/v", "test": "file:///ws/te"},
            split_sizes={"train": 398, "validation": 85, "test": 86},
            task="classification",
            target="target",
            feature_names=["mean radius"],
            feature_types={"mean radius": "numeric"},
            rows_raw=569,
        ),
        "training": TrainingJob(
            job_name="issue-12-exec-12-abc",
            status="Completed",
            algorithm="random_forest",
            duration_s=42.25,
            metrics={"train_accuracy": 0.99},
        ),
        "evaluation": EvaluationReport(
            evaluation_id="eval-12",
            metrics={"accuracy": 0.9532, "log_loss": 0.1234, "f1": 0.961},
            n_test=86,
            report_uri="file:///ws/evaluations/eval-12/metrics.json",
            duration_s=3.0,
        ),
        "thresholds": {"accuracy": 0.9, "log_loss": 0.2},
        "verdict": {"verdict": "accept", "reasons": ["accuracy 0.9532 ≥ 0.9", "log_loss 0.1234 ≤ 0.2"]},
        "model": RegisteredModel(
            name="breast-cancer-classification",
            version="3",
            semantic_version="1.2.0",
            model_uri="models:/breast-cancer-classification/3",
        ),
        "timings": {"PrepareData": 1.5, "Train": 42.25, "Evaluate": 3.0},
        "started_at": "2025-01-31T23:59:00+00:00",
        "finished_at": "2025-02-01T00:01:00+00:00",
    }
    values.update(overrides)
    return HistoryRecord(**values)


def section(markdown: str, title: str) -> str:
    """Return the text of the ``## title`` section (up to the next ``## ``)."""
    start = markdown.index(f"## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else len(markdown)]


def test_succeeded_record_has_front_matter_title_summary_and_passing_metrics() -> None:
    markdown = render_record(make_record(), {"roc_curve.png": "assets/x/roc_curve.png"})

    assert markdown.startswith("---\n")
    matter = front_matter(markdown)
    assert matter["issue"] == 12
    assert matter["status"] == "succeeded"
    assert matter["model_version"] == "3"
    assert matter["semantic_version"] == "1.2.0"
    assert matter["data_version"] == "a1b2c3d4e5f6"
    assert matter["metrics"] == {"accuracy": 0.9532, "log_loss": 0.1234, "f1": 0.961}
    assert matter["main_metric"] == "accuracy"

    assert "# Issue #12 — breast-cancer-classification — succeeded\n" in markdown
    assert "Issue: [#12 Train breast cancer classifier](https://github.com/acme/models/issues/12)" in markdown
    summary = section(markdown, "Summary")
    assert "| Execution | `exec-12-abc` |" in summary
    assert "| Verdict | accept |" in summary
    assert "| Model | breast-cancer-classification v3 (1.2.0) |" in summary
    assert "| Dataset | `breast_cancer-a1b2c3d4e5f6` (version `a1b2c3d4e5f6`) |" in summary
    assert "| Training job | `issue-12-exec-12-abc` (Completed, 42.2 s) |" in summary

    metrics = section(markdown, "Metrics against thresholds")
    assert "| accuracy | 0.9532 | ≥ 0.9 | pass |" in metrics
    assert "| log_loss | 0.1234 | ≤ 0.2 | pass |" in metrics
    assert "| f1 | 0.961 | — | — |" in metrics
    assert "## Failure" not in markdown

    assert "- accuracy 0.9532 ≥ 0.9" in section(markdown, "Judge")
    timings = section(markdown, "Timings")
    assert "| Train | 42.2 |" in timings
    assert "| **Total** | **46.8** |" in timings
    assert "![roc curve](assets/x/roc_curve.png)" in section(markdown, "Plots")


def test_spec_block_is_the_full_spec_as_yaml_with_its_hash() -> None:
    markdown = render_record(make_record(), {})

    spec = section(markdown, "Spec")
    assert "Spec hash: `0123456789ab`" in spec
    block = spec.split("```yaml\n", 1)[1].split("\n```", 1)[0]
    assert yaml.safe_load(block) == SPEC
    assert "## Plots" not in markdown


def test_rejected_record_marks_the_missed_threshold_with_its_direction() -> None:
    record = make_record(
        "rejected",
        evaluation=EvaluationReport(
            evaluation_id="eval-12",
            metrics={"accuracy": 0.85, "log_loss": 0.35},
            n_test=86,
            report_uri="file:///m.json",
            duration_s=1.0,
        ),
        verdict={"verdict": "reject", "reasons": ["accuracy 0.85 < 0.9", "log_loss 0.35 > 0.2"]},
        model=None,
    )

    markdown = render_record(record, {})

    assert "# Issue #12 — breast-cancer-classification — rejected\n" in markdown
    metrics = section(markdown, "Metrics against thresholds")
    assert "| accuracy | 0.85 | ≥ 0.9 | fail |" in metrics
    assert "| log_loss | 0.35 | ≤ 0.2 | fail |" in metrics
    assert "| Model | — |" in section(markdown, "Summary")
    judge = section(markdown, "Judge")
    assert "Verdict: **reject**" in judge
    assert "- log_loss 0.35 > 0.2" in judge
    assert front_matter(markdown)["verdict"] == "reject"


def test_threshold_without_a_measured_value_fails() -> None:
    record = make_record(
        "rejected",
        thresholds={"roc_auc": 0.95},
        evaluation=EvaluationReport(
            evaluation_id="e", metrics={"accuracy": 0.9}, n_test=1, report_uri="file:///m", duration_s=1.0
        ),
    )

    metrics = section(render_record(record, {}), "Metrics against thresholds")

    assert "| roc_auc | missing | ≥ 0.95 | fail |" in metrics


def test_failed_record_shows_error_and_cause() -> None:
    cause = json.dumps({"errorMessage": "job issue-12 failed: OOM", "errorType": "TrainingJobFailed"})
    record = make_record(
        "failed",
        evaluation=None,
        training=None,
        verdict=None,
        model=None,
        error={"Error": "TrainingJobFailed", "Cause": cause},
    )

    markdown = render_record(record, {})

    assert "# Issue #12 — breast-cancer-classification — failed\n" in markdown
    failure = section(markdown, "Failure")
    assert "Error: `TrainingJobFailed`" in failure
    assert '"errorMessage": "job issue-12 failed: OOM"' in failure
    assert "```json\n" in failure
    assert "## Judge" not in markdown
    metrics = section(markdown, "Metrics against thresholds")
    assert "| accuracy | missing | ≥ 0.9 | fail |" in metrics
    assert front_matter(markdown)["metrics"] == {}
    bare = render_record(record.model_copy(update={"thresholds": {}}), {})
    assert "no metrics were measured" in section(bare, "Metrics against thresholds")


def test_cause_with_backticks_gets_a_longer_fence() -> None:
    record = make_record("failed", error={"Error": "States.TaskFailed", "Cause": "boom ```x``` boom"})

    failure = section(render_record(record, {}), "Failure")

    assert "````text\nboom ```x``` boom\n````" in failure


def test_front_matter_round_trip_keeps_types() -> None:
    record = make_record()

    read = front_matter(render_record(record, {}))

    assert read == record_front_matter(record)
    assert read["started_at"] == "2025-01-31T23:59:00+00:00"  # a string, not a datetime
    assert read["model_version"] == "3"  # a string, not an int


def test_front_matter_absent_or_malformed() -> None:
    assert front_matter("# no front matter\n") == {}
    with pytest.raises(ValueError, match="must be a mapping"):
        front_matter("---\n- a\n- b\n---\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        front_matter("---\nkey: [unclosed\n---\n")


def test_record_stem_uses_utc_date_and_safe_names() -> None:
    assert record_stem(make_record()) == "2025-01-31-issue-12-exec-12-abc"
    late = make_record(started_at="2025-01-31T23:30:00-02:00")
    assert record_stem(late) == "2025-02-01-issue-12-exec-12-abc"
    odd = make_record(record_id="exec/../12 x")
    assert record_stem(odd).startswith("2025-01-31-issue-12-exec-12-x-")
    assert "/" not in record_stem(odd)
    assert safe_name("a b") != safe_name("a-b")
    with pytest.raises(ValueError, match="not ISO-8601"):
        record_stem(make_record(started_at="yesterday"))


def test_index_lists_rows_newest_first() -> None:
    rows = [
        {
            **record_front_matter(make_record(record_id="old", started_at="2025-01-01T10:00:00Z")),
            "record_path": "2025-01-01-issue-12-old.md",
        },
        {
            **record_front_matter(
                make_record(
                    "failed",
                    record_id="new",
                    model=None,
                    evaluation=None,
                    training=None,
                    started_at="2025-03-01T08:30:00Z",
                )
            ),
            "record_path": "2025-03-01-issue-12-new.md",
        },
        {
            **record_front_matter(
                make_record("rejected", record_id="mid", started_at="2025-02-01T00:00:00Z")
            ),
            "record_path": "2025-02-01-issue-12-mid.md",
        },
    ]

    index = render_index(rows)

    lines = [line for line in index.splitlines() if line.startswith("| 2025")]
    assert [line.split(" | ")[2] for line in lines] == [
        "[new](2025-03-01-issue-12-new.md)",
        "[mid](2025-02-01-issue-12-mid.md)",
        "[old](2025-01-01-issue-12-old.md)",
    ]
    assert lines[0] == (
        "| 2025-03-01 08:30 | [#12](https://github.com/acme/models/issues/12) | "
        "[new](2025-03-01-issue-12-new.md) | failed | — | — |"
    )
    assert lines[2] == (
        "| 2025-01-01 10:00 | [#12](https://github.com/acme/models/issues/12) | "
        "[old](2025-01-01-issue-12-old.md) | succeeded | breast-cancer-classification v3 (1.2.0) | "
        "accuracy 0.9532 |"
    )
    assert "3 run(s)" in index


def test_index_orders_by_utc_time_whatever_the_offset() -> None:
    late = make_record(record_id="late", started_at="2025-03-01T09:00:00+00:00")
    early = make_record(record_id="early", started_at="2025-03-01T10:00:00+02:00")  # 08:00 UTC

    index = render_index(
        [{**record_front_matter(r), "record_path": f"{r.record_id}.md"} for r in (early, late)]
    )

    lines = [line for line in index.splitlines() if line.startswith("| 2025")]
    assert [line.split(" | ")[0] for line in lines] == ["| 2025-03-01 09:00", "| 2025-03-01 08:00"]
    assert "[late](late.md)" in lines[0]


# ---------------------------------------------------------------------------------------------
# The evaluation report's new fields, the judge's suggestions, the operator's decision
# ---------------------------------------------------------------------------------------------


def full_evaluation() -> EvaluationReport:
    return EvaluationReport(
        evaluation_id="eval-12",
        metrics={"accuracy": 0.85, "log_loss": 0.35},
        validation_metrics={"accuracy": 0.87, "log_loss": 0.3},
        train_metrics={"accuracy": 0.99, "log_loss": 0.05},
        gaps={"accuracy": 0.14, "log_loss": -0.3},
        n_test=86,
        class_counts={"malignant": 100, "benign": 357},
        shap=ShapSummary(
            explainer="tree",
            sample_size=200,
            top_features=[
                FeatureImportance(feature="worst radius", mean_abs_shap=0.812345),
                FeatureImportance(feature="mean|texture", mean_abs_shap=0.2),
            ],
            duration_s=1.25,
        ),
        fairness=FairnessReport(
            sensitive_feature="sex",
            metric="selection_rate",
            by_group={"female": {"selection_rate": 0.41, "count": 40}, "male": {"selection_rate": 0.64}},
            difference=0.23,
            ratio=0.640625,
            max_difference=0.1,
            passed=False,
        ),
        baseline_uri="file:///ws/evaluations/eval-12/baseline.json",
        plots={"shap_summary": "file:///ws/shap_summary.png", "roc_curve": "file:///ws/roc_curve.png"},
        report_uri="file:///ws/evaluations/eval-12/report.json",
        duration_s=3.0,
    )


def awaiting_record(**overrides: object) -> HistoryRecord:
    evaluation = full_evaluation()
    verdict = judge(
        evaluation.metrics,
        {"accuracy": 0.9, "log_loss": 0.2},
        attempt=2,
        max_attempts=3,
        report=evaluation,
        algorithm="random_forest",
        hyperparameters={"n_estimators": 200, "max_depth": 8},
        task="classification",
    )
    values: dict[str, object] = {
        "evaluation": evaluation,
        "verdict": verdict.model_dump(mode="json"),
        "model": None,
        "attempt": 2,
        "operator": {
            "action": "retrain",
            "by": "alice",
            "at": "2025-01-31T20:00:00+00:00",
            "patch": {"hyperparameters": {"max_depth": 8}},
            "diff": "--- spec (attempt 1)\n+++ spec (attempt 2)\n-  max_depth: 12\n+  max_depth: 8",
        },
    }
    values.update(overrides)
    status = str(values.pop("status", "awaiting_operator"))
    return make_record(status, **values)


PLOT_LINKS = {"shap_summary.png": "assets/x/shap_summary.png", "roc_curve.png": "assets/x/roc_curve.png"}


def test_metrics_by_split_show_train_validation_test_and_gap() -> None:
    splits = section(render_record(awaiting_record(), PLOT_LINKS), "Metrics by split")

    assert "| Metric | Train | Validation | Test | Gap (train − test) |" in splits
    assert "| accuracy | 0.99 | 0.87 | 0.85 | 0.14 |" in splits
    assert "| log_loss | 0.05 | 0.3 | 0.35 | -0.3 |" in splits


def test_no_split_table_without_train_or_validation_metrics() -> None:
    assert "## Metrics by split" not in render_record(make_record(), {})


def test_judge_section_lists_attempts_and_suggestions_with_figures_and_patches() -> None:
    judge_text = section(render_record(awaiting_record(), PLOT_LINKS), "Judge")

    assert "Verdict: **retry**" in judge_text
    assert "Attempt 2 of 3 (1 left)" in judge_text
    assert "- accuracy 0.8500 < 0.9 (must be ≥ 0.9)" in judge_text
    assert "### Suggestions" in judge_text
    assert "- **overfitting**:" in judge_text
    assert "Figure: train accuracy 0.990 vs test accuracy 0.850: gap 0.140 (> 0.05)" in judge_text
    assert "Patch (hyperparameters): `max_depth: 5`, `min_samples_leaf: 4`" in judge_text
    assert "- **imbalance**:" in judge_text and "`class_weight: balanced`" in judge_text
    assert "- **fairness**:" in judge_text and "group 'female' 0.410 vs group 'male' 0.640" in judge_text


def test_operator_section_shows_who_what_when_patch_and_diff() -> None:
    operator = section(render_record(awaiting_record(), PLOT_LINKS), "Operator decision")

    assert "| Action | retrain |" in operator
    assert "| By | @alice |" in operator
    assert "| At | 2025-01-31T20:00:00+00:00 |" in operator
    assert "```yaml\nhyperparameters:\n  max_depth: 8\n```" in operator
    assert (
        "```diff\n--- spec (attempt 1)\n+++ spec (attempt 2)\n-  max_depth: 12\n+  max_depth: 8\n```"
        in operator
    )


def test_shap_section_has_the_top_features_and_the_summary_plot() -> None:
    markdown = render_record(awaiting_record(), PLOT_LINKS)

    shap = section(markdown, "Explanations (SHAP)")
    assert "Explainer `tree` on 200 rows (1.2 s)." in shap
    assert "| 1 | worst radius | 0.812345 |" in shap
    assert "| 2 | mean\\|texture | 0.2 |" in shap
    assert "![shap summary](assets/x/shap_summary.png)" in shap
    plots = section(markdown, "Plots")
    assert "shap_summary" not in plots
    assert "![roc curve](assets/x/roc_curve.png)" in plots


def test_fairness_section_has_groups_difference_ratio_limit_and_result() -> None:
    fairness = section(render_record(awaiting_record(), PLOT_LINKS), "Fairness")

    assert (
        "Sensitive feature `sex`, metric `selection_rate`: difference 0.23 (limit ≤ 0.1), "
        "ratio 0.640625: **fail**"
    ) in fairness
    assert "| Group | selection_rate | count |" in fairness
    assert "| female | 0.41 | 40 |" in fairness
    assert "| male | 0.64 | — |" in fairness


def test_baseline_section_links_the_committed_copy_relatively() -> None:
    links = {**PLOT_LINKS, "baseline.json": "assets/rec/baseline.json"}
    markdown = render_record(awaiting_record(), links)
    baseline = section(markdown, "Drift baseline")

    assert "[baseline.json](assets/rec/baseline.json)" in baseline
    assert "](file:" not in markdown  # no link in a record is absolute
    assert "baseline.json" not in section(markdown, "Plots")


def test_baseline_without_a_committed_copy_is_text_not_a_link() -> None:
    baseline = section(render_record(awaiting_record(), PLOT_LINKS), "Drift baseline")

    assert "`file:///ws/evaluations/eval-12/baseline.json`" in baseline
    assert "](file:" not in baseline


def test_awaiting_operator_and_cancelled_records_keep_their_front_matter() -> None:
    waiting = awaiting_record()
    cancelled = awaiting_record(
        status="cancelled", operator={"action": "cancel", "by": "bob", "at": "2025-02-01T09:00:00+00:00"}
    )

    for record, action in ((waiting, "retrain"), (cancelled, "cancel")):
        markdown = render_record(record, PLOT_LINKS)
        matter = front_matter(markdown)
        assert matter == record_front_matter(record)
        assert matter["status"] == record.status
        assert matter["verdict"] == "retry"
        assert matter["operator_action"] == action
        assert f"# Issue #12 — breast-cancer-classification — {record.status}\n" in markdown
        assert "## Failure" not in markdown
    assert "| By | @bob |" in section(render_record(cancelled, {}), "Operator decision")
    index = render_index([{**record_front_matter(cancelled), "record_path": "c.md"}])
    assert "| cancelled | — | accuracy 0.85 |" in index


def test_records_without_the_new_fields_have_none_of_the_new_sections() -> None:
    markdown = render_record(make_record(), {})

    for title in (
        "Metrics by split",
        "Operator decision",
        "Explanations (SHAP)",
        "Fairness",
        "Drift baseline",
    ):
        assert f"## {title}" not in markdown
    assert "### Suggestions" not in markdown
    assert front_matter(markdown)["operator_action"] is None


def test_model_outputs_show_notes_cluster_sizes_with_noise_and_family_figures() -> None:
    evaluation = EvaluationReport(
        evaluation_id="eval-7",
        metrics={"silhouette": 0.41},
        n_test=27,
        cluster_sizes={"1": 40, "-1": 10, "0": 50},
        details={"noise_fraction": 0.1, "component_variance": [0.5, 0.2, 0.1] * 5},
        notes=["DBSCAN labels new rows by their nearest core sample."],
        report_uri="file:///ws/report.json",
        duration_s=1.0,
    )
    text = section(render_record(make_record(evaluation=evaluation), {}), "Model outputs")

    assert "- DBSCAN labels new rows by their nearest core sample." in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "%" in line]
    assert rows == ["| 0 | 50 | 50.0% |", "| 1 | 40 | 40.0% |", "| noise | 10 | 10.0% |"]
    assert "| noise_fraction | 0.1 |" in text
    assert "… (15 in all)]" in text


def test_no_model_outputs_section_for_a_plain_supervised_report() -> None:
    assert "## Model outputs" not in render_record(make_record(), {})


def test_the_training_jobs_own_time_is_shown_but_not_added_to_the_total() -> None:
    record = make_record(timings={"DescribeTraining": 20.0, "Evaluate": 4.0, "training job": 19.5})
    timings = section(render_record(record, {}), "Timings")

    assert "| **Total** | **24.0** |" in timings
    assert timings.rstrip().endswith("| training job (within the states above) | 19.5 |")


def test_a_split_row_shows_a_gap_only_for_the_metrics_the_evaluation_compares() -> None:
    evaluation = EvaluationReport(
        evaluation_id="eval-3",
        metrics={"silhouette": 0.29, "calinski_harabasz": 9.3},
        train_metrics={"silhouette": 0.34, "calinski_harabasz": 46.8},
        gaps={"silhouette": 0.05},
        n_test=27,
        report_uri="file:///ws/report.json",
        duration_s=1.0,
    )
    text = section(render_record(make_record(evaluation=evaluation, thresholds={}), {}), "Metrics by split")

    assert "| silhouette | 0.34 | — | 0.29 | 0.05 |" in text
    assert "| calinski_harabasz | 46.8 | — | 9.3 | — |" in text


def test_the_repository_ships_the_empty_index_the_first_run_extends() -> None:
    from pathlib import Path

    from mcp_server.core.rendering.history_markdown import INDEX_DATA_PATH, INDEX_PATH, render_index_data

    root = Path(__file__).resolve().parents[2]
    assert (root / INDEX_PATH).read_text(encoding="utf-8") == render_index([])
    assert (root / INDEX_DATA_PATH).read_text(encoding="utf-8") == render_index_data([])
    assert "0 run(s)" in render_index([])


def test_index_data_round_trips_and_tolerates_a_hand_edited_file() -> None:
    from mcp_server.core.rendering.history_markdown import (
        index_row,
        is_record_path,
        read_index_data,
        render_index_data,
    )

    record = make_record(record_id="exec-9")
    row = index_row("2025-01-31-issue-12-exec-9.md", render_record(record, {}))
    assert row["record_id"] == "exec-9"
    assert row["record_path"] == "2025-01-31-issue-12-exec-9.md"
    broken = index_row("by-hand.md", "---\n- not a mapping\n---\n")
    assert broken == {"record_id": "by-hand", "status": "unreadable", "record_path": "by-hand.md"}
    text = render_index_data([broken, row])
    assert text == render_index_data([row, broken])  # the same rows give the same bytes
    assert [r["record_path"] for r in read_index_data(text)] == [
        "2025-01-31-issue-12-exec-9.md",
        "by-hand.md",
    ]
    for garbage in ("", "[]", '{"records": 3}', '{"records": [1, {"no": "path"}]}', "\x00"):
        assert read_index_data(garbage) == []
    assert is_record_path("training_history/2025-01-31-issue-12-exec-9.md")
    assert not is_record_path("training_history/README.md")
    assert not is_record_path("training_history/assets/x/plot.md")
    assert not is_record_path("docs/training_history/x.md")
