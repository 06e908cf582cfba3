"""LocalTuningBackend: real Optuna studies over real subprocess training jobs, tracked in MLflow.

Trials train logistic regression on breast_cancer (about 1 s each once the fork server is warm).
A crashing trial is a negative ``C``, which scikit-learn refuses when the estimator is fitted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import optuna
import pytest
from mcp import Client
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer

from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.backends.local.tuning import (
    LocalTuningBackend,
    decode_params,
    make_sampler,
    search_distributions,
)
from mcp_server.core.jobs.tuning import PARENT_RUN_TAG
from mcp_server.core.models import TrainingJobRequest, TuningJob, TuningJobRequest
from mcp_server.core.spec.schema import ComputeSpec, PreprocessingSpec, TuningSpec, validate_spec
from mcp_server.errors import NotFoundError, TrainingJobError
from mcp_server.server import build_server
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT, write_channels

TIMEOUT_S = 180


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    home = tmp_path_factory.mktemp("tuning")
    frame = load_breast_cancer(as_frame=True).frame
    settings = Settings(home=home, allow_write=True)
    training = LocalTrainingBackend(settings)
    return {
        "settings": settings,
        "training": training,
        "tuning": LocalTuningBackend(settings, training, poll_s=0.1),
        "channels": write_channels(home / "data", "cancer", frame, stratify=True),
        "features": {c: "numeric" for c in frame.columns if c != "target"},
    }


def make_request(workspace, name: str, **tuning: Any) -> TuningJobRequest:
    spec = {"objective": "f1", "max_trials": 2, "parallel_trials": 1, **tuning}
    training = TrainingJobRequest(
        job_name=name,
        task="classification",
        algorithm="logistic_regression",
        hyperparameters={"C": 1.0, "max_iter": 200},
        preprocessing=PreprocessingSpec(),
        target="target",
        feature_types=workspace["features"],
        channels=workspace["channels"],
        seed=7,
        compute=ComputeSpec(max_runtime_s=120),
        experiment="issue-5",
        tags={"issue": "5", "spec_hash": "abc123"},
    )
    return TuningJobRequest(tuning_job_name=name, tuning=TuningSpec.model_validate(spec), training=training)


def grid_of_c(*values: float) -> dict[str, Any]:
    return {"strategy": "grid", "search_space": {"C": {"type": "categorical", "values": list(values)}}}


def wait_done(backend: LocalTuningBackend, name: str) -> TuningJob:
    deadline = time.monotonic() + TIMEOUT_S
    while (job := backend.describe_tuning_job(name)).status == "InProgress":
        assert time.monotonic() < deadline, f"{name} still InProgress after {TIMEOUT_S} s"
        time.sleep(0.2)
    return job


def mlflow_client(workspace) -> MlflowClient:
    return MlflowClient(tracking_uri=workspace["settings"].tracking_uri)


@pytest.mark.slow
def test_a_random_search_runs_parallel_trials_as_child_runs_and_keeps_the_best(workspace):
    backend, training = workspace["tuning"], workspace["training"]
    space = {"C": {"type": "float", "low": 0.001, "high": 10.0, "log": True}}
    request = make_request(
        workspace, "rand-c", strategy="random", max_trials=4, parallel_trials=2, search_space=space
    )
    started = time.monotonic()
    first = backend.start_tuning_job(request)
    assert time.monotonic() - started < 10  # returns at once; the search runs in the background
    assert first.status == "InProgress" and first.objective_metric == "validation_f1"
    job = wait_done(backend, "rand-c")

    assert job.status == "Completed", job.failure_reason
    assert [t.number for t in job.trials] == [1, 2, 3, 4]
    assert all(t.status == "Completed" and 0.001 <= t.hyperparameters["C"] <= 10 for t in job.trials)
    assert len({t.hyperparameters["C"] for t in job.trials}) == 4
    best = max(job.trials, key=lambda t: t.objective or 0)
    assert job.best_trial == best.number and job.best() == best
    # each trial is a real training job whose printed objective is the trial's
    jobs = [training.describe_training_job(t.job_name) for t in job.trials]
    assert all(j.metrics["validation_f1"] == t.objective for j, t in zip(jobs, job.trials, strict=True))
    # two at a time: trial 2 started before trial 1 ended
    assert jobs[1].started_at <= jobs[0].ended_at

    client = mlflow_client(workspace)
    parent = client.get_run(job.tracking_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["strategy"] == "random" and parent.data.tags["tuning_job"] == "rand-c"
    assert parent.data.metrics["best_validation_f1"] == best.objective
    assert parent.data.tags["best_trial"] == str(best.number)
    history = client.get_metric_history(job.tracking_run_id, "validation_f1")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    for trial in job.trials:
        child = client.get_run(trial.tracking_run_id)
        assert child.data.tags[PARENT_RUN_TAG] == job.tracking_run_id
        assert child.data.tags["trial"] == str(trial.number)
        assert float(child.data.params["C"]) == pytest.approx(trial.hyperparameters["C"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{job.tracking_run_id}'"
    )
    assert len(children) == 4

    # persisted: another backend (a restarted server) answers the same, and a second start changes nothing
    restarted = LocalTuningBackend(workspace["settings"], LocalTrainingBackend(workspace["settings"]))
    assert restarted.describe_tuning_job("rand-c") == job
    assert restarted.start_tuning_job(request) == job


def test_a_crashing_trial_is_recorded_failed_and_the_search_goes_on(workspace):
    backend = workspace["tuning"]
    backend.start_tuning_job(make_request(workspace, "grid-crash", **grid_of_c(-1.0, 0.5)))
    job = wait_done(backend, "grid-crash")
    assert job.status == "Completed"
    by_c = {t.hyperparameters["C"]: t for t in job.trials}
    assert set(by_c) == {-1.0, 0.5}  # the grid, each combination once
    crashed, good = by_c[-1.0], by_c[0.5]
    assert crashed.status == "Failed" and crashed.objective is None
    assert "'C' parameter of LogisticRegression" in crashed.failure_reason
    assert good.status == "Completed" and job.best_trial == good.number


def test_every_trial_failing_fails_the_search_with_the_first_failure(workspace):
    backend = workspace["tuning"]
    backend.start_tuning_job(
        make_request(workspace, "grid-all-fail", parallel_trials=2, **grid_of_c(-1.0, -2.0))
    )
    job = wait_done(backend, "grid-all-fail")
    assert job.status == "Failed" and job.best_trial is None
    first = job.trials[0]
    assert first.status == "Failed"
    assert job.failure_reason.startswith(
        "every trial failed; the first failure (trial 1, job grid-all-fail-t1)"
    )
    assert f"Got {first.hyperparameters['C']} instead" in job.failure_reason
    assert mlflow_client(workspace).get_run(job.tracking_run_id).info.status == "FAILED"


START_AND_DIE = """
import json, os, sys, time
from pathlib import Path
from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.backends.local.tuning import LocalTuningBackend
from mcp_server.core.models import TuningJobRequest
from mcp_server.settings import Settings
settings = Settings(home=Path(sys.argv[1]), allow_write=True)
backend = LocalTuningBackend(settings, LocalTrainingBackend(settings), poll_s=0.05)
request = TuningJobRequest.model_validate_json(sys.argv[2])
backend.start_tuning_job(request)
status = Path(sys.argv[1]) / "tuning" / request.tuning_job_name / "status.json"
while not json.loads(status.read_text())["trials"]:
    time.sleep(0.05)
os._exit(0)  # the server dies while its search runs
"""


@pytest.mark.slow
def test_a_search_lost_by_a_server_restart_is_reported_failed(workspace):
    request = make_request(workspace, "orphan-search", **grid_of_c(0.5, 1.0))
    home = workspace["settings"].home
    subprocess.run(
        [sys.executable, "-c", START_AND_DIE, str(home), request.model_dump_json()],
        check=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "MLOPS_WARM_JOBS": "0"},
    )
    job = workspace["tuning"].describe_tuning_job("orphan-search")
    assert job.status == "Failed" and "was lost" in job.failure_reason
    assert job.trials and all(t.status != "InProgress" for t in job.trials)
    assert json.loads((home / "tuning/orphan-search/status.json").read_text())["status"] == "Failed"
    assert mlflow_client(workspace).get_run(job.tracking_run_id).info.status == "FAILED"


def test_unknown_tuning_job_raises_not_found(workspace):
    with pytest.raises(NotFoundError, match="no-such-search"):
        workspace["tuning"].describe_tuning_job("no-such-search")
    with pytest.raises(NotFoundError):
        workspace["tuning"].describe_tuning_job("../jobs")


def test_a_range_optuna_refuses_is_refused_before_anything_starts(workspace):
    request = make_request(
        workspace, "bad-range", search_space={"C": {"type": "float", "low": 5.0, "high": 1.0}}
    )
    with pytest.raises(TrainingJobError, match="cannot search the space of bad-range"):
        workspace["tuning"].start_tuning_job(request)
    assert not (workspace["settings"].home / "tuning" / "bad-range").exists()


def test_search_spaces_become_optuna_distributions_and_samplers():
    tuning = TuningSpec.model_validate(
        {
            "objective": "f1",
            "max_trials": 6,
            "search_space": {
                "epochs": {"type": "int", "low": 10, "high": 100, "log": True},
                "dropout": {"type": "float", "low": 0.0, "high": 0.5},
                "hidden_layers": {"type": "categorical", "values": [[64, 32], [128]]},
            },
        }
    )
    distributions = search_distributions(tuning)
    assert distributions["epochs"] == optuna.distributions.IntDistribution(10, 100, log=True)
    assert distributions["dropout"] == optuna.distributions.FloatDistribution(0.0, 0.5)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(tuning, seed=3))
    values = decode_params(study.ask(distributions).params, distributions)
    assert values["hidden_layers"] in ([64, 32], [128]) and isinstance(values["epochs"], int)
    sampler = make_sampler(tuning, seed=3)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 3
    random = make_sampler(tuning.model_copy(update={"strategy": "random"}), seed=3)
    assert isinstance(random, optuna.samplers.RandomSampler)


def call(server: Any, name: str, arguments: dict[str, Any]) -> Any:
    async def run() -> Any:
        async with Client(server) as client:
            return await client.call_tool(name, arguments)

    return asyncio.run(run())


def test_the_tools_start_and_describe_searches_and_report_errors(workspace):
    settings = workspace["settings"]
    server = build_server(settings, base_dir=REPO_ROOT)
    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
        }
    ).model_dump(mode="json")
    dataset = {
        "dataset_id": "cancer-1",
        "name": "cancer",
        "source": "sklearn://breast_cancer",
        "data_version": "1",
        "uri": "file:///x",
        "splits": workspace["channels"],
        "split_sizes": {"train": 1, "validation": 1},
        "task": "classification",
        "target": "target",
        "feature_names": list(workspace["features"]),
        "feature_types": workspace["features"],
        "rows_raw": 2,
    }
    arguments = {
        "tuning_job_name": "tool-search",
        "spec": spec,
        "dataset": dataset,
        "experiment": "e",
        "tags": {},
    }
    result = call(server, "start_tuning_job", arguments)
    assert result.is_error and "[TrainingJobError]" in result.content[0].text
    assert "no tuning section" in result.content[0].text
    missing = call(server, "describe_tuning_job", {"tuning_job_name": "never-started"})
    assert missing.is_error and "[NotFoundError]" in missing.content[0].text
    read_only = build_server(Settings(home=settings.home), base_dir=REPO_ROOT)
    refused = call(read_only, "start_tuning_job", arguments)
    assert refused.is_error and "[WriteNotAllowedError]" in refused.content[0].text

    spec["tuning"] = {
        "strategy": "grid",
        "objective": "f1",
        "search_space": {"C": {"type": "categorical", "values": [1.0]}},
    }
    started = call(server, "start_tuning_job", arguments)
    assert not started.is_error, started.content
    assert started.structured_content["status"] == "InProgress"
    described = call(server, "describe_tuning_job", {"tuning_job_name": "tool-search", "wait_s": 120})
    assert described.structured_content["status"] == "Completed"
    assert described.structured_content["trials"][0]["hyperparameters"] == {"C": 1.0}
