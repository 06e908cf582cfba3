"""The judge: pass / retry / fail with attempts, and suggestions derived from the report."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_server.core.judge.verdict import Verdict, judge, suggested_patch
from mcp_server.core.models import (
    EvaluationReport,
    FairnessReport,
    FeatureImportance,
    ShapSummary,
)
from mcp_server.core.spec.hyperparameters import HYPERPARAMETER_MODELS


def report(**values: Any) -> EvaluationReport:
    base: dict[str, Any] = {
        "evaluation_id": "eval-1",
        "metrics": {"f1": 0.912},
        "n_test": 86,
        "report_uri": "file:///ws/report.json",
        "duration_s": 1.0,
    }
    return EvaluationReport(**{**base, **values})


def fairness(passed: bool, difference: float = 0.23) -> FairnessReport:
    return FairnessReport(
        sensitive_feature="sex",
        metric="selection_rate",
        by_group={"female": {"selection_rate": 0.41}, "male": {"selection_rate": 0.64}},
        difference=difference,
        ratio=0.64,
        max_difference=0.1,
        passed=passed,
    )


def within_range(algorithm: str, hyperparameters: dict[str, Any], patch: dict[str, Any]) -> None:
    """The patched hyperparameters validate against the algorithm's declared ranges."""
    HYPERPARAMETER_MODELS[algorithm].model_validate({**hyperparameters, **patch})


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------


def test_pass_when_every_threshold_is_met() -> None:
    verdict = judge({"f1": 0.97, "rmse": 1.0}, {"f1": 0.95}, attempt=2, max_attempts=3)

    assert verdict.verdict == "pass"
    assert verdict.reasons == ["f1 0.9700 meets ≥ 0.95"]
    assert (verdict.attempt, verdict.max_attempts, verdict.attempts_left) == (2, 3, 1)
    assert verdict.suggestions == []
    assert verdict.fairness is None


def test_a_miss_is_retry_while_attempts_are_left_then_fail() -> None:
    verdicts = [judge({"f1": 0.9}, {"f1": 0.95}, attempt=n, max_attempts=3) for n in (1, 2, 3)]

    assert [v.verdict for v in verdicts] == ["retry", "retry", "fail"]
    assert [v.attempts_left for v in verdicts] == [2, 1, 0]
    assert verdicts[0].reasons[0] == "f1 0.9000 < 0.95 (must be ≥ 0.95)"


def test_default_budget_of_one_keeps_the_old_pass_or_fail() -> None:
    verdict = judge({"f1": 0.9}, {"f1": 0.95})

    assert verdict.verdict == "fail"
    assert verdict.max_attempts == 1
    assert verdict.attempts_left == 0
    assert verdict.checks[0].comparator == "≥"


def test_error_metrics_are_ceilings() -> None:
    verdict = judge({"rmse": 0.5, "log_loss": 0.35}, {"rmse": 0.6, "log_loss": 0.2})

    rmse, log_loss = verdict.checks
    assert rmse.passed and rmse.comparator == "≤" and rmse.direction == "minimize"
    assert not log_loss.passed
    assert verdict.reasons == ["rmse 0.5000 meets ≤ 0.6", "log_loss 0.3500 > 0.2 (must be ≤ 0.2)"]
    assert verdict.verdict == "fail"


@pytest.mark.parametrize("metrics", [{}, {"f1": float("nan")}])
def test_a_missing_metric_fails_its_check(metrics: dict[str, float]) -> None:
    verdict = judge(metrics, {"f1": 0.5}, attempt=1, max_attempts=2, report=report(metrics=metrics))

    assert verdict.verdict == "retry"
    assert verdict.checks[0].value is None and not verdict.checks[0].passed
    assert verdict.reasons[0] == "f1 was not produced by the evaluation (must be ≥ 0.5)"
    assert verdict.reasons[-1].startswith("no cause was diagnosed: a thresholded metric was not measured")


def test_no_thresholds_accepts_the_model() -> None:
    verdict = judge({"f1": 0.1}, {})

    assert verdict.verdict == "pass"
    assert verdict.reasons == ["no thresholds were set: the model is accepted as trained"]


def test_verdict_round_trips_through_json() -> None:
    verdict = judge(
        {"f1": 0.912},
        {"f1": 0.95},
        max_attempts=3,
        report=report(train_metrics={"f1": 1.0}),
        algorithm="xgboost",
    )

    again = Verdict.model_validate(verdict.model_dump(mode="json"))

    assert again == verdict


# ---------------------------------------------------------------------------------------------
# Overfitting
# ---------------------------------------------------------------------------------------------

OVERFIT_CASES = [
    ("xgboost", {}, {"max_depth": 4, "min_child_weight": 3.0, "subsample": 0.8}),
    ("random_forest", {}, {"max_depth": 8, "min_samples_leaf": 4}),
    ("random_forest", {"max_depth": 12, "min_samples_leaf": 4}, {"max_depth": 8, "min_samples_leaf": 8}),
    ("logistic_regression", {}, {"C": 0.3}),
    (
        "xgboost",
        {"max_depth": 3, "subsample": 0.8},
        {"max_depth": 2, "min_child_weight": 3.0, "subsample": 0.7},
    ),
    ("neural_network", {}, {"dropout": 0.2, "weight_decay": 1e-4}),
    ("neural_network", {"dropout": 0.45, "weight_decay": 1e-3}, {"dropout": 0.5, "weight_decay": 0.01}),
]


@pytest.mark.parametrize(("algorithm", "hyperparameters", "expected"), OVERFIT_CASES)
def test_a_large_gap_suggests_regularisation_within_range(
    algorithm: str, hyperparameters: dict[str, Any], expected: dict[str, Any]
) -> None:
    evaluation = report(train_metrics={"f1": 1.0}, gaps={"f1": 0.088})

    verdict = judge(
        evaluation.metrics,
        {"f1": 0.95},
        max_attempts=3,
        report=evaluation,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        task="classification",
    )

    [suggestion] = verdict.suggestions
    assert suggestion.kind == "overfitting"
    assert suggestion.metric == "f1"
    assert suggestion.value == pytest.approx(0.088)
    assert suggestion.figure == "train f1 1.000 vs test f1 0.912: gap 0.088 (> 0.05)"
    assert suggestion.patch == expected
    assert "overfitting" in suggestion.message
    within_range(algorithm, hyperparameters, suggestion.patch)
    assert suggested_patch(verdict.suggestions) == {"hyperparameters": expected}


def test_an_error_metric_overfits_when_test_error_exceeds_train_by_a_quarter() -> None:
    evaluation = report(metrics={"rmse": 31.5}, train_metrics={"rmse": 20.0})

    verdict = judge(
        evaluation.metrics,
        {"rmse": 25},
        max_attempts=2,
        report=evaluation,
        algorithm="linear_regression",
        hyperparameters={"alpha": 0.0},
        task="regression",
    )

    [suggestion] = verdict.suggestions
    assert suggestion.kind == "overfitting"
    assert suggestion.patch == {"alpha": 1.0}
    assert "test is 1.57 × train (> 1.25 ×)" in suggestion.figure
    within_range("linear_regression", {}, suggestion.patch)


def test_the_gap_can_come_from_gaps_alone() -> None:
    evaluation = report(gaps={"f1": 0.088})

    verdict = judge(evaluation.metrics, {"f1": 0.95}, report=evaluation, algorithm="logistic_regression")

    assert [s.kind for s in verdict.suggestions] == ["overfitting"]
    assert verdict.suggestions[0].patch == {"C": 0.3}


# ---------------------------------------------------------------------------------------------
# Underfitting, imbalance, fairness
# ---------------------------------------------------------------------------------------------

UNDERFIT_CASES = [
    ("xgboost", {}, {"n_estimators": 400, "max_depth": 8}),
    ("xgboost", {"n_estimators": 6000, "max_depth": 31}, {"n_estimators": 10_000, "max_depth": 32}),
    (
        "random_forest",
        {"max_depth": 8, "min_samples_leaf": 4},
        {"n_estimators": 200, "max_depth": 16, "min_samples_leaf": 2},
    ),
    # A model far below its default size is grown to the default at once, not doubled.
    ("random_forest", {"n_estimators": 1, "max_depth": 1}, {"n_estimators": 100, "max_depth": 8}),
    ("xgboost", {"n_estimators": 10, "max_depth": 2}, {"n_estimators": 200, "max_depth": 4}),
    ("logistic_regression", {"C": 0.3}, {"C": 0.9}),
    ("linear_regression", {"alpha": 3.0}, {"alpha": 1.0}),
    ("neural_network", {}, {"hidden_layers": [128, 64], "epochs": 200}),
    (
        "neural_network",
        {"hidden_layers": [600, 16], "epochs": 700},
        {"hidden_layers": [1024, 32], "epochs": 1000},
    ),
]


@pytest.mark.parametrize(("algorithm", "hyperparameters", "expected"), UNDERFIT_CASES)
def test_a_train_score_below_the_threshold_suggests_more_capacity(
    algorithm: str, hyperparameters: dict[str, Any], expected: dict[str, Any]
) -> None:
    evaluation = report(metrics={"f1": 0.80}, train_metrics={"f1": 0.85})

    verdict = judge(
        evaluation.metrics,
        {"f1": 0.95},
        report=evaluation,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
    )

    [suggestion] = verdict.suggestions
    assert suggestion.kind == "underfitting"
    assert suggestion.figure == "train f1 0.850 < threshold 0.95 (test 0.800)"
    assert suggestion.patch == expected
    within_range(algorithm, hyperparameters, suggestion.patch)


def test_ordinary_least_squares_has_nothing_to_lower_and_says_so() -> None:
    evaluation = report(metrics={"r2": 0.5}, train_metrics={"r2": 0.55})

    verdict = judge(evaluation.metrics, {"r2": 0.8}, report=evaluation, algorithm="linear_regression")

    [suggestion] = verdict.suggestions
    assert suggestion.kind == "underfitting"
    assert suggestion.patch == {}
    assert "random_forest" in suggestion.message


def test_underfitting_wins_over_a_large_gap() -> None:
    evaluation = report(metrics={"f1": 0.70}, train_metrics={"f1": 0.85})

    verdict = judge(evaluation.metrics, {"f1": 0.95}, report=evaluation, algorithm="xgboost")

    assert [s.kind for s in verdict.suggestions] == ["underfitting"]


def test_binary_imbalance_sets_scale_pos_weight_to_negatives_over_positives() -> None:
    evaluation = report(
        metrics={"f1": 0.93}, train_metrics={"f1": 0.96}, class_counts={"malignant": 100, "benign": 357}
    )

    verdict = judge(
        evaluation.metrics, {"f1": 0.95}, report=evaluation, algorithm="xgboost", task="classification"
    )

    [suggestion] = verdict.suggestions
    assert suggestion.kind == "imbalance"
    assert suggestion.patch == {"scale_pos_weight": round(100 / 357, 3)}
    assert suggestion.figure == (
        "smallest class 'malignant' 100 rows vs largest 'benign' 357 rows: ratio 0.28 (< 0.5)"
    )
    within_range("xgboost", {}, suggestion.patch)


@pytest.mark.parametrize("algorithm", ["random_forest", "logistic_regression"])
def test_imbalance_balances_class_weights(algorithm: str) -> None:
    evaluation = report(class_counts={"a": 10, "b": 50, "c": 40})

    verdict = judge(evaluation.metrics, {"f1": 0.95}, report=evaluation, algorithm=algorithm)

    [suggestion] = verdict.suggestions
    assert suggestion.patch == {"class_weight": "balanced"}
    within_range(algorithm, {}, suggestion.patch)


def test_imbalance_with_weights_already_set_has_no_patch_but_says_why() -> None:
    evaluation = report(class_counts={"a": 10, "b": 50})

    verdict = judge(
        evaluation.metrics,
        {"f1": 0.95},
        report=evaluation,
        algorithm="random_forest",
        hyperparameters={"class_weight": "balanced"},
    )

    [suggestion] = verdict.suggestions
    assert suggestion.patch == {}
    assert "already balanced" in suggestion.message


def test_a_failed_fairness_check_is_a_retry_naming_the_groups() -> None:
    evaluation = report(
        metrics={"f1": 0.97},
        fairness=fairness(passed=False),
        shap=ShapSummary(
            explainer="tree",
            sample_size=100,
            top_features=[FeatureImportance(feature="sex_female", mean_abs_shap=0.2)],
            duration_s=0.1,
        ),
    )

    verdict = judge(evaluation.metrics, {"f1": 0.95}, max_attempts=3, report=evaluation)

    assert verdict.verdict == "retry"
    assert all(c.passed for c in verdict.checks)
    assert verdict.fairness == {
        "metric": "selection_rate",
        "sensitive_feature": "sex",
        "difference": 0.23,
        "max_difference": 0.1,
        "passed": False,
    }
    assert "fairness: selection_rate differs by 0.2300" in verdict.reasons[-1]
    [suggestion] = verdict.suggestions
    assert suggestion.kind == "fairness"
    assert suggestion.patch == {}
    assert "'female' 0.410" in suggestion.figure and "'male' 0.640" in suggestion.figure
    assert "difference 0.230 (> 0.1 allowed)" in suggestion.figure
    assert "ranks #1 by mean |SHAP|" in suggestion.message


def test_a_passed_fairness_check_is_reported_and_passes() -> None:
    evaluation = report(metrics={"f1": 0.97}, fairness=fairness(passed=True, difference=0.05))

    verdict = judge(evaluation.metrics, {"f1": 0.95}, report=evaluation)

    assert verdict.verdict == "pass"
    assert verdict.fairness is not None and verdict.fairness["passed"]
    assert verdict.reasons[-1].endswith("within ≤ 0.1")


def test_no_suggestion_when_nothing_triggers() -> None:
    evaluation = report(metrics={"f1": 0.93}, train_metrics={"f1": 0.96}, class_counts={"a": 212, "b": 357})

    verdict = judge(evaluation.metrics, {"f1": 0.95}, max_attempts=2, report=evaluation, algorithm="xgboost")

    assert verdict.verdict == "retry"
    assert verdict.suggestions == []
    assert suggested_patch(verdict.suggestions) == {}
    assert verdict.reasons[-1].startswith("no cause was diagnosed: train and test scores are close")


def test_no_suggestion_on_a_pass_even_with_a_gap() -> None:
    evaluation = report(metrics={"f1": 0.96}, train_metrics={"f1": 1.0}, class_counts={"a": 1, "b": 9})

    verdict = judge(evaluation.metrics, {"f1": 0.95}, report=evaluation, algorithm="xgboost")

    assert verdict.verdict == "pass"
    assert verdict.suggestions == []


def test_without_train_metrics_the_reason_says_what_could_not_be_checked() -> None:
    verdict = judge({"f1": 0.9}, {"f1": 0.95}, report=report(metrics={"f1": 0.9}), algorithm="xgboost")

    assert verdict.suggestions == []
    assert "training-split value of f1 was not reported" in verdict.reasons[-1]


def test_an_unknown_algorithm_gets_suggestions_without_patches() -> None:
    evaluation = report(train_metrics={"f1": 1.0})

    verdict = judge(evaluation.metrics, {"f1": 0.95}, report=evaluation, algorithm="kmeans")

    [suggestion] = verdict.suggestions
    assert suggestion.patch == {}
    assert "no automatic change for kmeans" in suggestion.message
