"""The tuning section's rules, trial requests, the workflow view of a search, and its record."""

from __future__ import annotations

import json

import pytest

from mcp_server.core.jobs.requests import job_name
from mcp_server.core.jobs.tuning import (
    PARENT_RUN_TAG,
    as_training_job,
    best_trial,
    every_trial_failed_reason,
    objective_of,
    short_reason,
    trial_request,
    tuned_hyperparameters,
)
from mcp_server.core.models import (
    HistoryRecord,
    IssueRef,
    TrainingJob,
    TrainingJobRequest,
    TuningJob,
    TuningJobRequest,
    TuningTrial,
)
from mcp_server.core.rendering.comments import tuning_line
from mcp_server.core.rendering.history_markdown import render_record
from mcp_server.core.spec.schema import (
    ComputeSpec,
    PreprocessingSpec,
    SpecValidationError,
    TuningSpec,
    validate_spec,
)
from mcp_server.core.spec.tuning import MAX_TRIALS, grid_size, objective_metric, trial_count
from training_containers.common.contract import JobConfig

BASE = {
    "model_type": "supervised_learning",
    "task": "classification",
    "algorithm": "xgboost",
    "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
}


def errors_of(tuning: dict, **overrides) -> dict[str, str]:
    """Validate BASE with ``tuning`` and return path -> str(error)."""
    with pytest.raises(SpecValidationError) as caught:
        validate_spec({**BASE, **overrides, "tuning": tuning})
    return {e.path: str(e) for e in caught.value.errors}


def space(**parameters) -> dict:
    return {"objective": "f1", "search_space": parameters}


def test_a_valid_search_validates_and_survives_a_round_trip():
    spec = validate_spec(
        {
            **BASE,
            "tuning": space(
                max_depth={"type": "int", "low": 2, "high": 8},
                learning_rate={"type": "float", "low": 0.01, "high": 0.3, "log": True},
                subsample={"type": "categorical", "values": [0.5, 0.8, 1.0]},
            ),
        }
    )
    assert spec.tuning is not None and spec.tuning.strategy == "bayesian"
    assert validate_spec(spec.model_dump(mode="json")) == spec


def test_an_empty_search_space_is_refused():
    errors = errors_of(space())
    assert "name at least one hyperparameter" in errors["tuning.search_space"]


def test_an_unknown_hyperparameter_gets_a_did_you_mean_and_the_list():
    errors = errors_of(space(max_dept={"type": "int", "low": 2, "high": 8}))
    message = errors["tuning.search_space.max_dept"]
    assert "xgboost has no hyperparameter 'max_dept'" in message
    assert "did you mean 'max_depth'?" in message and "learning_rate" in message


def test_bounds_are_checked_by_the_algorithms_hyperparameter_model():
    errors = errors_of(
        space(
            max_depth={"type": "int", "low": 2, "high": 80},
            learning_rate={"type": "float", "low": 0, "high": 0.3},
        )
    )
    assert "less than or equal to 32" in errors["tuning.search_space.max_depth.high"]
    assert "max_depth takes integers >= 1 and <= 32" in errors["tuning.search_space.max_depth.high"]
    assert "(got 80)" in errors["tuning.search_space.max_depth.high"]
    assert "greater than 0" in errors["tuning.search_space.learning_rate.low"]


def test_low_must_be_below_high_and_int_bounds_whole():
    errors = errors_of(space(max_depth={"type": "int", "low": 6, "high": 3}))
    assert "must be greater than low (6)" in errors["tuning.search_space.max_depth.high"]
    errors = errors_of(space(max_depth={"type": "int", "low": 2, "high": 7.5}))
    assert "whole numbers" in errors["tuning.search_space.max_depth.high"]
    errors = errors_of(space(max_depth={"type": "int", "low": 2}))
    assert "required for type int" in errors["tuning.search_space.max_depth.high"]


def test_float_on_an_integer_hyperparameter_says_to_use_int():
    errors = errors_of(space(n_estimators={"type": "float", "low": 10, "high": 100}))
    assert "n_estimators takes integers: use type int" in errors["tuning.search_space.n_estimators.type"]


def test_log_scale_needs_a_positive_low():
    errors = errors_of(space(gamma={"type": "float", "low": 0, "high": 5, "log": True}))
    assert "needs low > 0" in errors["tuning.search_space.gamma.low"]


def test_categorical_values_are_required_distinct_and_each_valid():
    errors = errors_of(
        space(
            n_estimators={"type": "categorical", "values": []},
            subsample={"type": "categorical", "values": [0.5, 2.0]},
            max_depth={"type": "categorical", "values": [3, 3]},
            gamma={"type": "categorical", "low": 1, "values": [0.0]},
        )
    )
    assert "list the values to try" in errors["tuning.search_space.n_estimators.values"]
    assert "less than or equal to 1" in errors["tuning.search_space.subsample.values[1]"]
    assert "must be distinct" in errors["tuning.search_space.max_depth.values"]
    assert "take values, not low and high" in errors["tuning.search_space.gamma.low"]


def test_grid_search_takes_categorical_parameters_only_and_runs_its_whole_grid():
    errors = errors_of(
        {**space(max_depth={"type": "int", "low": 2, "high": 8}), "strategy": "grid"},
    )
    assert "grid search supports categorical parameters only" in errors["tuning.search_space.max_depth.type"]
    grid = space(
        max_depth={"type": "categorical", "values": [2, 4, 6]},
        subsample={"type": "categorical", "values": [0.5, 1.0]},
    )
    errors = errors_of({**grid, "strategy": "grid", "max_trials": 5})
    assert "every combination of the values, 6 here" in errors["tuning.max_trials"]
    spec = validate_spec({**BASE, "tuning": {**grid, "strategy": "grid", "max_trials": 10}})
    assert spec.tuning is not None
    assert grid_size(spec.tuning.search_space) == 6
    assert trial_count("grid", 10, spec.tuning.search_space) == 6
    assert trial_count("random", 10, spec.tuning.search_space) == 10


def test_supervised_tuning_needs_a_validation_split_and_a_bounded_trial_count():
    split = {"train": 0.8, "validation": 0, "test": 0.2}
    errors = errors_of(
        space(max_depth={"type": "int", "low": 2, "high": 8}),
        dataset={**BASE["dataset"], "split": split},
    )
    assert "validation_f1" in errors["dataset.split.validation"]
    errors = errors_of(
        {**space(max_depth={"type": "int", "low": 2, "high": 8}), "max_trials": MAX_TRIALS + 1}
    )
    assert f"at most {MAX_TRIALS}" in errors["tuning.max_trials"]


def test_the_objective_must_be_a_metric_of_the_task():
    errors = errors_of({**space(max_depth={"type": "int", "low": 2, "high": 8}), "objective": "rmse"})
    assert "not a classification metric" in errors["tuning.objective"]


def test_objective_metric_reads_validation_or_falls_back_to_train():
    assert objective_metric("classification", "f1") == "validation_f1"
    assert objective_metric("regression", "rmse") == "validation_rmse"
    assert objective_metric("clustering", "silhouette") == "validation_silhouette"
    assert objective_metric("clustering", "silhouette", has_validation=False) == "train_silhouette"
    assert objective_metric("control", "mean_return") == "train_mean_return"


def make_request(**tuning) -> TuningJobRequest:
    spec = TuningSpec.model_validate(
        {"objective": "f1", "search_space": {"max_depth": {"type": "int", "low": 2, "high": 8}}, **tuning}
    )
    training = TrainingJobRequest(
        job_name="issue-3-abc-tune-a1",
        task="classification",
        algorithm="xgboost",
        hyperparameters={"max_depth": 6, "n_estimators": 50},
        preprocessing=PreprocessingSpec(),
        target="target",
        feature_types={"a": "numeric"},
        channels={"train": "file:///d/train", "validation": "file:///d/validation"},
        compute=ComputeSpec(),
        experiment="issue-3",
        tags={"issue": "3"},
    )
    return TuningJobRequest(tuning_job_name="issue-3-abc-tune-a1", tuning=spec, training=training)


def test_a_trial_request_overrides_the_static_hyperparameters_and_names_its_parent():
    request = make_request()
    trial = trial_request(request, 4, {"max_depth": 3}, "parent-run")
    assert trial.job_name == "issue-3-abc-tune-a1-t4"
    assert trial.hyperparameters == {"max_depth": 3, "n_estimators": 50}
    assert trial.tags == {
        "issue": "3",
        "tuning_job": "issue-3-abc-tune-a1",
        "trial": "4",
        PARENT_RUN_TAG: "parent-run",
    }
    assert request.training.hyperparameters["max_depth"] == 6  # the template is unchanged


def test_objective_direction_defaults_from_the_catalog():
    assert objective_of(make_request()) == ("validation_f1", "maximize")
    assert objective_of(make_request(objective="log_loss")) == ("validation_log_loss", "minimize")
    assert objective_of(make_request(direction="minimize")) == ("validation_f1", "minimize")


def test_tuning_job_names_fit_sagemakers_32_characters():
    name = job_name("issue-12-" + "f" * 60, 2, kind="tune", max_length=32)
    assert len(name) == 32 and name.endswith("-tune-a2")
    assert name != job_name("issue-12-" + "e" * 60, 2, kind="tune", max_length=32)
    assert job_name("issue-1-x", 1, kind="tune", max_length=32) == "issue-1-x-tune-a1"
    assert len(make_request().tuning_job_name) <= 32


def trial(number: int, status: str = "Completed", objective: float | None = None, **extra) -> TuningTrial:
    return TuningTrial(
        number=number,
        job_name=f"tune-a1-t{number}",
        hyperparameters={"max_depth": number + 1, "learning_rate": 0.05},
        status=status,
        objective=objective,
        **extra,
    )


def search(status: str = "Completed", trials: list[TuningTrial] | None = None, **extra) -> TuningJob:
    trials = trials if trials is not None else [trial(1, objective=0.9), trial(2, objective=0.95)]
    best = best_trial(trials, "maximize")
    values = {
        "name": "tune-a1",
        "status": status,
        "algorithm": "xgboost",
        "strategy": "bayesian",
        "objective_metric": "validation_f1",
        "direction": "maximize",
        "max_trials": len(trials),
        "parallel_trials": 2,
        "trials": trials,
        "best_trial": best.number if best else None,
        "duration_s": 12.5,
        **extra,
    }
    return TuningJob(**values)


def test_the_best_trial_follows_the_direction_and_skips_failures():
    trials = [trial(1, objective=0.3), trial(2, "Failed", failure_reason="x"), trial(3, objective=0.1)]
    assert best_trial(trials, "maximize").number == 1
    assert best_trial(trials, "minimize").number == 3
    assert best_trial([trial(1, "Failed")], "maximize") is None
    assert best_trial([trial(1, objective=0.5), trial(2, objective=0.5)], "maximize").number == 1


def test_every_trial_failed_names_the_first_failure():
    trials = [trial(1, "Failed", failure_reason="boom one"), trial(2, "Failed", failure_reason="boom two")]
    assert every_trial_failed_reason(trials) == (
        "every trial failed; the first failure (trial 1, job tune-a1-t1): boom one"
    )
    assert short_reason("x" * 900).endswith("…") and len(short_reason("x" * 900)) == 200


def test_a_completed_search_is_seen_as_its_best_trials_training_job():
    best = TrainingJob(
        job_name="tune-a1-t2",
        status="Completed",
        algorithm="xgboost",
        model_uri="file:///jobs/tune-a1-t2/model",
        tracking_run_id="run-2",
        metrics={"validation_f1": 0.95},
    )
    view = as_training_job(search(), best)
    assert view.job_name == "tune-a1-t2" and view.model_uri == "file:///jobs/tune-a1-t2/model"
    assert view.tracking_run_id == "run-2" and view.tuning is not None and view.tuning.best_trial == 2
    running = as_training_job(search("InProgress", [trial(1, "InProgress")]), None)
    assert running.status == "InProgress" and running.job_name == "tune-a1" and running.model_uri is None
    failed = as_training_job(
        search("Failed", [trial(1, "Failed")], failure_reason="every trial failed"), None
    )
    assert failed.status == "Failed" and failed.failure_reason == "every trial failed"
    assert tuned_hyperparameters({"max_depth": 6, "n_estimators": 50}, view.model_dump(mode="json")) == {
        "max_depth": 3,
        "n_estimators": 50,
        "learning_rate": 0.05,
    }
    assert tuned_hyperparameters({"max_depth": 6}, best) == {"max_depth": 6}


def test_two_hundred_trials_keep_the_state_small():
    reason = "Traceback: " + "x" * 5000
    trials = [
        trial(n, "Failed", failure_reason=short_reason(reason), duration_s=1.5, tracking_run_id="a" * 32)
        for n in range(1, MAX_TRIALS + 1)
    ]
    payload = json.dumps(as_training_job(search("Failed", trials), None).model_dump(mode="json"))
    # Step Functions caps a state at 256 KiB; the record written at the end holds a second copy
    assert len(payload.encode()) < 64 * 1024


def record_with(tuning: TuningJob) -> HistoryRecord:
    training = TrainingJob(
        job_name="tune-a1-t2", status="Completed", algorithm="xgboost", duration_s=3.0, tuning=tuning
    )
    return HistoryRecord(
        record_id="issue-3-abc-a1",
        issue=IssueRef(number=3, title="tuned"),
        status="succeeded",
        spec={"algorithm": "xgboost"},
        spec_hash="abc",
        training=training,
        started_at="2026-01-02T03:04:05Z",
        finished_at="2026-01-02T03:05:05Z",
    )


def test_the_record_lists_every_trial_marks_the_best_and_the_failures():
    trials = [
        trial(1, objective=0.9, duration_s=2.0),
        trial(2, objective=0.95, duration_s=2.5),
        trial(3, "Failed", failure_reason="ValueError: bad depth\nTraceback...", duration_s=0.4),
    ]
    text = render_record(record_with(search(trials=trials)), {})
    section = text.split("## Hyperparameter tuning", 1)[1].split("\n## ", 1)[0]
    assert "bayesian search, objective `validation_f1` (maximize), 3 of 3 trials run" in section
    assert "2 completed, 1 failed" in section
    assert "| **2 (best)** | `max_depth: 3`, `learning_rate: 0.05` | **0.95** | Completed | 2.5 |" in section
    assert "| 1 | `max_depth: 2`, `learning_rate: 0.05` | 0.9 | Completed | 2.0 |" in section
    assert "| 3 |" in section and "| Failed | 0.4 |" in section
    assert "- Trial 3 (`tune-a1-t3`): ValueError: bad depth" in section
    assert "Traceback" not in section


def test_the_closing_comment_names_the_best_trial():
    line = tuning_line(search(trials=[trial(1, objective=0.9), trial(2, "Failed", failure_reason="x")]))
    assert line.startswith("- Hyperparameter tuning: bayesian search over 2 trials (1 failed)")
    assert "best trial 1 with validation_f1 0.9000" in line and "max_depth: 2" in line


def test_training_programs_ignore_the_objective_sagemaker_adds_to_each_trial():
    config = JobConfig.from_hyperparameters(
        {
            "_algorithm": "xgboost",
            "_task": "regression",
            "_target": "y",
            "_tuning_objective_metric": "x",
            "a": 1,
        }
    )
    assert config.hyperparameters == {"a": 1}


def test_a_clustering_search_is_scored_on_the_validation_rows_when_it_has_them():
    request = make_request(
        objective="silhouette", search_space={"n_clusters": {"type": "int", "low": 2, "high": 6}}
    )
    clustering = request.training.model_copy(update={"task": "clustering", "algorithm": "kmeans"})
    with_validation = request.model_copy(update={"training": clustering})
    assert objective_of(with_validation) == ("validation_silhouette", "maximize")
    train_only = clustering.model_copy(update={"channels": {"train": "file:///d/train"}})
    assert objective_of(request.model_copy(update={"training": train_only})) == (
        "train_silhouette",
        "maximize",
    )
