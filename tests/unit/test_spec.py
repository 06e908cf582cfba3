"""validate_spec: defaults, every kind of error and its message, and the shipped example issues."""

from __future__ import annotations

import copy
import csv
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_server.core.spec import catalog
from mcp_server.core.spec.issue_form import extract_spec
from mcp_server.core.spec.schema import SpecError, SpecValidationError, TrainingSpec, validate_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "issues"
VALID_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("*.md") if p.name != "invalid-spec.md")
DELETE = object()

BASE: dict[str, Any] = {
    "model_type": "supervised_learning",
    "task": "classification",
    "algorithm": "xgboost",
    "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
}


def spec_with(**changes: Any) -> dict[str, Any]:
    """BASE with changes; keys are paths with "__" between levels; DELETE removes the key."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


def errors_for(data: Any) -> list[SpecError]:
    with pytest.raises(SpecValidationError) as excinfo:
        validate_spec(data)
    return excinfo.value.errors


def only_error(data: Any) -> SpecError:
    errors = errors_for(data)
    assert len(errors) == 1, errors
    return errors[0]


def read_example(name: str) -> tuple[str, str]:
    """Return (title, body) of an example issue: a ``<!-- title: ... -->`` line, then the body."""
    first, _, body = (EXAMPLES / name).read_text().partition("\n")
    match = re.fullmatch(r"<!-- title: (.+) -->", first)
    assert match, f"{name} must start with a <!-- title: ... --> line"
    return match[1], body


def train_template() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "issue_templates" / "train.yml").read_text())


# ---------------------------------------------------------------------------------------------
# Valid specs and defaults
# ---------------------------------------------------------------------------------------------


def test_defaults_are_filled() -> None:
    spec = validate_spec(copy.deepcopy(BASE))
    assert isinstance(spec, TrainingSpec)
    assert spec.dataset is not None
    assert spec.dataset.name == "breast_cancer"
    assert spec.dataset.split.model_dump() == {
        "train": 0.7,
        "validation": 0.15,
        "test": 0.15,
        "stratify": True,
        "seed": 42,
    }
    assert spec.preprocessing.missing_values == "median"
    assert spec.preprocessing.scaling == "standard"
    assert spec.hyperparameters["max_depth"] == 6
    assert spec.hyperparameters["n_estimators"] == 200
    assert spec.retraining.max_attempts == 3
    assert spec.compute.max_runtime_s == 3600
    assert spec.deployment is None
    assert spec.metrics == list(catalog.DEFAULT_METRICS_BY_TASK["classification"])


def test_given_hyperparameters_override_the_defaults_only() -> None:
    spec = validate_spec(spec_with(hyperparameters={"max_depth": 4, "learning_rate": 0.1}))
    assert spec.hyperparameters["max_depth"] == 4
    assert spec.hyperparameters["learning_rate"] == 0.1
    assert spec.hyperparameters["subsample"] == 1.0


def test_thresholded_metrics_are_reported_too() -> None:
    spec = validate_spec(spec_with(evaluation={"metrics": ["accuracy"], "thresholds": {"f1": 0.9}}))
    assert spec.metrics == ["accuracy", "f1"]


def test_the_spec_hash_is_stable_and_follows_content() -> None:
    first, again = validate_spec(copy.deepcopy(BASE)), validate_spec(copy.deepcopy(BASE))
    other = validate_spec(spec_with(hyperparameters={"max_depth": 3}))
    assert first.spec_hash() == again.spec_hash() != other.spec_hash()


_MODEL_TYPE_OF = {t: m for m, tasks in catalog.TASKS_BY_MODEL_TYPE.items() for t in tasks}


@pytest.mark.parametrize(("task", "algorithm"), sorted(catalog.SUPPORTED_TRAINING))
def test_every_supported_combination_validates(task: str, algorithm: str) -> None:
    changes: dict[str, Any] = {"model_type": _MODEL_TYPE_OF[task], "task": task, "algorithm": algorithm}
    if task == "control":
        changes.update(dataset=DELETE, environment={"name": "CartPole-v1"})
    else:
        changes["dataset__source"] = "sklearn://iris" if task != "regression" else "sklearn://diabetes"
    spec = validate_spec(spec_with(**changes))
    assert (spec.task, spec.algorithm) == (task, algorithm)
    assert spec.hyperparameters  # every algorithm's defaults are filled in


# ---------------------------------------------------------------------------------------------
# Unknown keys, types, ranges
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "suggestion"),
    [
        ({"algoritm": "xgboost"}, "algoritm", "algorithm"),
        ({"dataset__targt": "y"}, "dataset.targt", "target"),
        ({"dataset__split__trian": 0.7}, "dataset.split.trian", "train"),
        ({"preprocessing__scalling": "standard"}, "preprocessing.scalling", "scaling"),
        ({"evaluation__tresholds": {"f1": 0.9}}, "evaluation.tresholds", "thresholds"),
        ({"hyperparameters": {"max_detph": 3}}, "hyperparameters.max_detph", "max_depth"),
        ({"hyperparameters": {"n_estimator": 3}}, "hyperparameters.n_estimator", "n_estimators"),
    ],
)
def test_unknown_keys_get_a_did_you_mean(changes: dict[str, Any], path: str, suggestion: str) -> None:
    error = only_error(spec_with(**changes))
    assert error.path == path
    assert re.search(
        rf"unknown key '\w+'; did you mean '{suggestion}'\? Allowed keys: .*{suggestion}", error.message
    )


def test_unknown_hyperparameter_lists_the_algorithms_own() -> None:
    error = only_error(spec_with(algorithm="logistic_regression", hyperparameters={"max_iterations": 50}))
    assert error.path == "hyperparameters.max_iterations"
    assert re.search(
        r"did you mean 'max_iter'\? Allowed keys: C, l1_ratio, max_iter, class_weight$", error.message
    )


@pytest.mark.parametrize(
    ("changes", "path", "pattern"),
    [
        (
            {"task": "clasification"},
            "task",
            r"expected one of .*'classification'.*; did you mean 'classification'\?",
        ),
        ({"algorithm": "xgbost"}, "algorithm", r"did you mean 'xgboost'\?"),
        (
            {"preprocessing__missing_values": "medain"},
            "preprocessing.missing_values",
            r"did you mean 'median'\?",
        ),
    ],
)
def test_enum_values_get_a_did_you_mean(changes: dict[str, Any], path: str, pattern: str) -> None:
    error = only_error(spec_with(**changes))
    assert error.path == path
    assert re.search(pattern, error.message)


@pytest.mark.parametrize(
    ("changes", "path", "pattern"),
    [
        ({"retraining__max_attempts": "three"}, "retraining.max_attempts", r"valid integer"),
        ({"hyperparameters": {"max_depth": "deep"}}, "hyperparameters.max_depth", r"valid integer"),
        ({"evaluation__metrics": "f1"}, "evaluation.metrics", r"valid list"),
        ({"evaluation__thresholds": {"f1": "high"}}, "evaluation.thresholds.f1", r"valid number"),
        ({"dataset": "breast_cancer"}, "dataset", r"valid dictionary"),
        ({"hyperparameters": [4]}, "hyperparameters", r"valid dictionary"),
        ({"preprocessing__drop_duplicates": "sometimes"}, "preprocessing.drop_duplicates", r"valid boolean"),
    ],
)
def test_wrong_types(changes: dict[str, Any], path: str, pattern: str) -> None:
    error = only_error(spec_with(**changes))
    assert error.path == path
    assert re.search(pattern, error.message)


@pytest.mark.parametrize(
    ("changes", "path", "pattern"),
    [
        ({"hyperparameters": {"learning_rate": 0}}, "hyperparameters.learning_rate", r"greater than 0"),
        ({"hyperparameters": {"max_depth": 64}}, "hyperparameters.max_depth", r"less than or equal to 32"),
        ({"retraining__max_attempts": 11}, "retraining.max_attempts", r"less than or equal to 10"),
        ({"compute__max_runtime_s": 0}, "compute.max_runtime_s", r"greater than or equal to 1"),
        ({"dataset__split__seed": -1}, "dataset.split.seed", r"greater than or equal to 0"),
        ({"evaluation__thresholds": {"f1": 1.5}}, "evaluation.thresholds.f1", r"a fraction between 0 and 1"),
    ],
)
def test_out_of_range_values(changes: dict[str, Any], path: str, pattern: str) -> None:
    error = only_error(spec_with(**changes))
    assert error.path == path
    assert re.search(pattern, error.message)


def test_required_top_level_fields() -> None:
    errors = errors_for({"dataset": {"source": "sklearn://iris"}})
    assert [(e.path, e.message) for e in errors] == [
        ("model_type", "required"),
        ("task", "required"),
        ("algorithm", "required"),
    ]


def test_a_spec_that_is_not_a_mapping() -> None:
    with pytest.raises(SpecValidationError, match=r"\(spec\): the spec must be a mapping"):
        validate_spec(["task", "classification"])


# ---------------------------------------------------------------------------------------------
# Cross-field rules
# ---------------------------------------------------------------------------------------------


def test_split_fractions_must_sum_to_one() -> None:
    error = only_error(spec_with(dataset__split={"train": 0.8, "validation": 0.15, "test": 0.15}))
    assert error.path == "dataset.split"
    assert re.search(r"must sum to 1, got train 0.8 \+ validation 0.15 \+ test 0.15 = 1.1", error.message)


def test_split_defaults_count_in_the_sum() -> None:
    error = only_error(spec_with(dataset__split={"train": 0.6}))
    assert re.search(r"train 0.6 \+ validation 0.15 \+ test 0.15 = 0.9", error.message)


def test_numbers_given_as_strings_or_booleans_are_type_errors() -> None:
    errors = errors_for(spec_with(dataset__split={"train": "0.5"}, hyperparameters={"max_depth": True}))
    found = {e.path: e.message for e in errors}
    assert re.search("valid number", found["dataset.split.train"])
    assert re.search("valid integer", found["hyperparameters.max_depth"])


@pytest.mark.parametrize(
    ("task", "algorithm", "source", "metric"),
    [
        ("classification", "xgboost", "sklearn://iris", "r2"),
        ("regression", "random_forest", "sklearn://diabetes", "accuracy"),
    ],
)
def test_thresholds_must_name_a_metric_the_task_produces(
    task: str, algorithm: str, source: str, metric: str
) -> None:
    data = spec_with(
        task=task, algorithm=algorithm, dataset__source=source, evaluation__thresholds={metric: 0.5}
    )
    error = only_error(data)
    assert error.path == f"evaluation.thresholds.{metric}"
    last = catalog.METRICS_BY_TASK[task][-1]
    assert re.search(rf"^{metric} is not a {task} metric.*{task} produces .*{last}", error.message)


def test_threshold_metric_typo_gets_a_did_you_mean() -> None:
    error = only_error(spec_with(evaluation__thresholds={"f_1": 0.9}))
    assert re.search(r"did you mean 'f1'\?", error.message)


def test_listed_metrics_must_be_produced_by_the_task() -> None:
    error = only_error(spec_with(evaluation__metrics=["accuracy", "rmse"]))
    assert error.path == "evaluation.metrics[1]"
    assert re.search(r"^not a classification metric.*classification produces accuracy", error.message)


@pytest.mark.parametrize(("task", "algorithm"), [("classification", "xgboost"), ("regression", "xgboost")])
def test_supervised_tasks_need_a_target(task: str, algorithm: str) -> None:
    error = only_error(spec_with(task=task, algorithm=algorithm, dataset__target=DELETE))
    assert error.path == "dataset.target"
    assert re.search(rf"required for {task}: the name of the column to predict", error.message)


def test_supervised_tasks_need_a_dataset() -> None:
    error = only_error(spec_with(dataset=DELETE))
    assert (error.path, error.message) == ("dataset", "required for the classification task")


def test_model_type_and_task_must_match() -> None:
    error = only_error(spec_with(model_type="unsupervised_learning"))
    assert error.path == "task"
    assert re.search(
        r"unsupervised_learning supports the tasks clustering or dimensionality_reduction", error.message
    )


def test_task_and_algorithm_must_match() -> None:
    error = only_error(spec_with(algorithm="linear_regression"))
    assert error.path == "algorithm"
    assert re.search(
        r"task classification supports random_forest, xgboost, .* or neural_network", error.message
    )


def test_neural_network_is_accepted_with_its_defaults() -> None:
    spec = validate_spec(spec_with(algorithm="neural_network", hyperparameters={"hidden_layers": [16]}))
    assert spec.hyperparameters["hidden_layers"] == [16]
    assert spec.hyperparameters["dropout"] == 0.1
    assert spec.hyperparameters["epochs"] == 100


@pytest.mark.parametrize(
    ("hyperparameters", "path", "pattern"),
    [
        ({"dropout": 1.5}, "hyperparameters.dropout", r"less than or equal to 0.9"),
        ({"hidden_layers": [0]}, "hyperparameters.hidden_layers[0]", r"greater than or equal to 1"),
        ({"batch_size": 5000}, "hyperparameters.batch_size", r"less than or equal to 4096"),
    ],
)
def test_neural_network_hyperparameters_out_of_range_name_the_field(
    hyperparameters: dict[str, Any], path: str, pattern: str
) -> None:
    error = only_error(spec_with(algorithm="neural_network", hyperparameters=hyperparameters))
    assert error.path == path
    assert re.search(pattern, error.message)


def test_every_task_of_the_catalog_trains() -> None:
    assert {t for t, _ in catalog.SUPPORTED_TRAINING} == set(catalog.TASKS)
    assert set(catalog.FAMILY_BY_ALGORITHM) == set(catalog.ALGORITHMS)


def test_tsne_with_a_deployment_section_is_refused_with_the_reason() -> None:
    data = spec_with(
        model_type="unsupervised_learning",
        task="dimensionality_reduction",
        algorithm="tsne",
        dataset__source="sklearn://digits",
        deployment={"strategy": "direct"},
    )
    error = only_error(data)
    assert error.path == "deployment"
    assert re.search(r"t-SNE has no transform for new points.*cannot be deployed", error.message)


def test_a_drift_trigger_without_monitoring_is_refused_at_its_field() -> None:
    errors = {e.path: e.message for e in errors_for(spec_with(retraining__triggers={"drift_psi": 0.2}))}
    assert re.search(r"add a monitoring section", errors["retraining.triggers.drift_psi"])
    # and, as every trigger, it retrains a deployed model
    assert re.search(r"add a deployment section", errors["retraining.triggers"])
    assert len(errors) == 2


def test_environment_is_refused_for_supervised_tasks() -> None:
    errors = errors_for(spec_with(environment={"name": "CartPole-v1"}))
    assert {e.path for e in errors} == {"environment"}
    assert any("only reinforcement learning uses it" in e.message for e in errors)


@pytest.mark.parametrize(
    ("source", "pattern"),
    [
        ("sklearn://iriss", r"unknown scikit-learn dataset; did you mean 'iris'\?"),
        ("file://data.xlsx", r"file:// sources must be .csv or .parquet"),
        ("s3://bucket/data.xlsx", r"s3://BUCKET/KEY ending in .csv"),
        ("s3://no/data.csv", r"s3://BUCKET/KEY ending in .csv"),  # a bucket name has 3 characters or more
        ("data.csv", r"expected sklearn://NAME, file://PATH"),
    ],
)
def test_dataset_sources(source: str, pattern: str) -> None:
    error = only_error(spec_with(dataset__source=source))
    assert error.path == "dataset.source"
    assert re.search(pattern, error.message)


@pytest.mark.parametrize(
    "source", ["s3://team-data/loans/2026/loans.csv", "s3://b.e-t/x.csv.gz", "s3://bkt/x.parquet"]
)
def test_s3_sources_are_accepted(source: str) -> None:
    assert validate_spec(spec_with(dataset__source=source)).dataset.source == source


def test_every_error_is_reported_at_once() -> None:
    data = spec_with(
        algorithm="linear_regression",
        dataset__split={"train": 0.9},
        retraining__max_attempts=0,
        evaluation__thresholds={"rmse": 1.0},
        compute__volume_gb=30,
    )
    paths = {e.path for e in errors_for(data)}
    assert paths == {
        "algorithm",
        "dataset.split",
        "retraining.max_attempts",
        "evaluation.thresholds.rmse",
        "compute.volume_gb",
    }


# ---------------------------------------------------------------------------------------------
# The example issues
# ---------------------------------------------------------------------------------------------


def test_every_example_has_a_title_line() -> None:
    for path in EXAMPLES.glob("*.md"):
        title, body = read_example(path.name)
        assert title.strip()
        assert body.strip()


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_example_issue_validates(name: str) -> None:
    _, body = read_example(name)
    spec = validate_spec(extract_spec(body, train_template()))
    assert (spec.task, spec.algorithm) in catalog.SUPPORTED_TRAINING
    assert spec.evaluation.thresholds


def test_the_demo_issue_is_the_form_with_the_agreed_settings() -> None:
    _, body = read_example("breast-cancer-xgboost.md")
    assert "### Model type" in body
    assert "_No response_" in body
    spec = validate_spec(extract_spec(body, train_template()))
    assert spec.dataset is not None
    assert (spec.algorithm, spec.dataset.source, spec.dataset.target) == (
        "xgboost",
        "sklearn://breast_cancer",
        "target",
    )
    assert {k: spec.hyperparameters[k] for k in ("max_depth", "learning_rate", "n_estimators")} == {
        "max_depth": 4,
        "learning_rate": 0.1,
        "n_estimators": 200,
    }
    assert spec.evaluation.thresholds == {"f1": 0.95}
    assert spec.metrics == ["accuracy", "f1", "roc_auc", "precision", "recall"]


def test_the_invalid_example_reports_all_its_errors_at_once() -> None:
    _, body = read_example("invalid-spec.md")
    errors = errors_for(extract_spec(body, train_template()))
    found = {e.path: e.message for e in errors}
    expected = {
        "preprocessing.scalling": r"unknown key 'scalling'; did you mean 'scaling'\?",
        "retraining.max_attempts": r"valid integer",
        "compute.max_runtime_s": r"greater than or equal to 1",
        "dataset.split": r"fractions must sum to 1",
        "evaluation.thresholds.r2": r"^r2 is not a classification metric",
        "algorithm": r"task classification supports random_forest, xgboost",
    }
    assert set(found) == set(expected)
    for path, pattern in expected.items():
        assert re.search(pattern, found[path]), (path, found[path])


def test_the_churn_example_reads_the_shipped_csv() -> None:
    _, body = read_example("churn-csv-xgboost.md")
    spec = validate_spec(extract_spec(body, None))
    assert spec.dataset is not None
    path = ROOT / spec.dataset.source.removeprefix("file://")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert 1000 <= len(rows) <= 2000
    assert {row[spec.dataset.target or ""] for row in rows} == {"yes", "no"}
    assert any("" in row.values() for row in rows), "the CSV should have a few missing values"


def test_the_churn_csv_is_what_its_script_generates(tmp_path: Path) -> None:
    script = ROOT / "examples" / "data" / "make_customer_churn.py"
    module_spec = importlib.util.spec_from_file_location("make_customer_churn", script)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    module.main(tmp_path / "churn.csv")
    assert (tmp_path / "churn.csv").read_bytes() == (
        ROOT / "examples" / "data" / "customer_churn.csv"
    ).read_bytes()


def test_random_forest_max_features_fraction_is_range_checked() -> None:
    data = spec_with(algorithm="random_forest", hyperparameters={"max_features": 5.0})
    error = only_error(data)
    assert error.path == "hyperparameters.max_features"
    assert re.search("less than or equal to 1", error.message)
    assert validate_spec(spec_with(algorithm="random_forest", hyperparameters={"max_features": 0.5}))


def test_early_stopping_without_a_validation_split_is_refused_before_training() -> None:
    data = spec_with(
        hyperparameters={"early_stopping_rounds": 10},
        dataset__split={"train": 0.8, "validation": 0, "test": 0.2},
    )
    error = only_error(data)
    assert error.path == "hyperparameters.early_stopping_rounds"
    assert re.search("validation split, which is 0", error.message)


def test_explainability_and_fairness_are_accepted_with_their_defaults() -> None:
    spec = validate_spec(
        spec_with(evaluation={"explainability": "shap", "fairness": {"sensitive_feature": "sex"}})
    )
    assert spec.evaluation.explainability == "shap"
    assert spec.evaluation.fairness is not None
    assert spec.evaluation.fairness.max_difference == 0.1
    assert spec.evaluation.fairness.metric is None


def test_a_fairness_metric_must_suit_the_task() -> None:
    data = spec_with(evaluation={"fairness": {"sensitive_feature": "sex", "metric": "mae"}})
    error = only_error(data)
    assert error.path == "evaluation.fairness.metric"
    assert re.search("for classification use selection_rate", error.message)


@pytest.mark.parametrize(
    "example", ["breast-cancer-xgboost.md", "diabetes-random-forest.md", "wine-weak-forest.md"]
)
def test_a_normalised_spec_validates_again_unchanged(example: str) -> None:
    _, body = read_example(example)
    spec = validate_spec(extract_spec(body, train_template()))
    again = validate_spec(spec.model_dump(mode="json"))
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()


def test_an_unregistered_environment_is_a_spec_error_with_the_closest_id() -> None:
    data = spec_with(
        model_type="reinforcement_learning",
        task="control",
        algorithm="ppo",
        dataset=DELETE,
        environment={"name": "CartPol-v1"},
    )
    with pytest.raises(SpecValidationError) as caught:
        validate_spec(data, lambda: {"CartPole-v1", "Acrobot-v1"})
    (error,) = caught.value.errors
    assert error.path == "environment.name"
    assert error.value == "CartPol-v1"
    assert "not a registered Gymnasium environment" in error.message
    assert "did you mean 'CartPole-v1'?" in error.message
    data["environment"]["name"] = "CartPole-v1"
    assert validate_spec(data, lambda: {"CartPole-v1"}).environment.name == "CartPole-v1"
