"""Suggestions for clustering, dimensionality reduction and control, and how they patch the spec."""

from __future__ import annotations

from typing import Any

from mcp_server.core.judge.verdict import judge, suggested_patch
from mcp_server.core.models import EvaluationReport
from mcp_server.core.spec.hyperparameters import HYPERPARAMETER_MODELS


def report(**values: Any) -> EvaluationReport:
    base: dict[str, Any] = {
        "evaluation_id": "eval-1",
        "metrics": {},
        "n_test": 30,
        "report_uri": "file:///ws/report.json",
        "duration_s": 1.0,
    }
    return EvaluationReport(**{**base, **values})


def verdict_for(
    task: str, algorithm: str, evaluation: EvaluationReport, thresholds: dict[str, float], **hp: Any
):
    return judge(
        evaluation.metrics,
        thresholds,
        attempt=1,
        max_attempts=3,
        report=evaluation,
        algorithm=algorithm,
        hyperparameters=hp,
        task=task,
    )


def test_kmeans_with_too_many_clusters_is_told_to_compare_a_smaller_k() -> None:
    evaluation = report(metrics={"silhouette": 0.28}, cluster_sizes={str(i): 19 for i in range(8)})
    verdict = verdict_for("clustering", "kmeans", evaluation, {"silhouette": 0.5})

    assert verdict.verdict == "retry"
    (suggestion,) = verdict.suggestions
    assert suggestion.kind == "cluster_structure"
    assert suggestion.patch == {"n_clusters": 4}
    assert "silhouette 0.280 < threshold 0.5" == suggestion.figure
    assert suggested_patch(verdict.suggestions) == {"hyperparameters": {"n_clusters": 4}}


def test_dbscan_with_mostly_noise_gets_a_larger_eps() -> None:
    evaluation = report(metrics={"silhouette": 0.1}, details={"noise_fraction": 0.6})
    (suggestion,) = verdict_for("clustering", "dbscan", evaluation, {"silhouette": 0.3}).suggestions

    assert suggestion.patch == {"eps": 0.75}
    assert "60% of the rows are noise" in suggestion.message


def test_dbscan_with_little_noise_gets_a_smaller_eps() -> None:
    evaluation = report(metrics={"silhouette": 0.1}, details={"noise_fraction": 0.01})
    (suggestion,) = verdict_for("clustering", "dbscan", evaluation, {"silhouette": 0.3}, eps=2.0).suggestions

    assert suggestion.patch == {"eps": 1.4}


def test_pca_keeping_too_little_variance_asks_for_that_fraction() -> None:
    evaluation = report(metrics={"explained_variance_ratio": 0.29})
    (suggestion,) = verdict_for(
        "dimensionality_reduction", "pca", evaluation, {"explained_variance_ratio": 0.8}
    ).suggestions

    assert suggestion.patch == {"n_components": 0.8}
    HYPERPARAMETER_MODELS["pca"].model_validate(suggestion.patch)


def test_tsne_with_low_trustworthiness_lowers_the_perplexity() -> None:
    evaluation = report(metrics={"trustworthiness": 0.8})
    (suggestion,) = verdict_for(
        "dimensionality_reduction", "tsne", evaluation, {"trustworthiness": 0.95}
    ).suggestions

    assert suggestion.patch == {"perplexity": 15.0}


def test_a_policy_that_did_not_learn_gets_twice_the_environment_steps() -> None:
    evaluation = report(
        metrics={"mean_return": 120.0},
        train_metrics={"mean_return": 95.0},
        details={"env_steps": 20000},
    )
    verdict = verdict_for("control", "ppo", evaluation, {"mean_return": 450})
    (suggestion,) = verdict.suggestions

    assert suggestion.kind == "training_budget"
    assert suggestion.section_patch == {"environment": {"total_timesteps": 40000}}
    assert "training mean_return 95.000" in suggestion.figure
    assert suggested_patch(verdict.suggestions) == {"environment": {"total_timesteps": 40000}}


def test_a_policy_that_trained_well_but_plays_worse_greedily_gets_no_budget_patch() -> None:
    evaluation = report(metrics={"mean_return": 300.0}, train_metrics={"mean_return": 470.0})
    (suggestion,) = verdict_for("control", "dqn", evaluation, {"mean_return": 450}).suggestions

    assert suggestion.section_patch == {}
    assert "reached 470.000 while training but 300.000 in greedy evaluation" in suggestion.message


def test_supervised_suggestions_are_unchanged_by_the_family_rules() -> None:
    evaluation = report(metrics={"f1": 0.8}, train_metrics={"f1": 0.99}, class_counts={"a": 50, "b": 50})
    (suggestion,) = verdict_for("classification", "xgboost", evaluation, {"f1": 0.9}).suggestions

    assert suggestion.kind == "overfitting"
