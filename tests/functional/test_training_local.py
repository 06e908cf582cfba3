"""LocalTrainingBackend against real subprocess jobs, a real MLflow store and real data.

The four algorithms train together once per module (about 7 s, hence ``slow``); the failure
cases each run one short job (1 to 3 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, r2_score

from mcp_server.backends.local.job_folder import parse_metrics
from mcp_server.backends.local.runtimes import OWNER_ENV
from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.core.models import TrainingJob, TrainingJobRequest
from mcp_server.core.spec.schema import ComputeSpec, FeatureSelectionSpec, PreprocessingSpec
from mcp_server.errors import NotFoundError, TrainingJobError
from mcp_server.settings import Settings
from tests.conftest import write_channels
from training_containers.common.contract import TrainingContract, run
from training_containers.common.preprocessing import build_preprocessor, fit_preprocessor

JOB_TIMEOUT_S = 120


def make_request(job_name: str, algorithm: str, task: str, channels: dict[str, str], columns, **extra):
    values = {
        "job_name": job_name,
        "task": task,
        "algorithm": algorithm,
        "hyperparameters": {},
        "preprocessing": PreprocessingSpec(),
        "target": "target",
        "feature_types": {c: "numeric" for c in columns if c != "target"},
        "channels": channels,
        "compute": ComputeSpec(max_runtime_s=JOB_TIMEOUT_S),
        "experiment": "issue-7",
        "tags": {"issue": "7", "spec_hash": "abc123"},
    }
    values.update(extra)
    return TrainingJobRequest(**values)


def wait_until_done(
    backend: LocalTrainingBackend, job_name: str, timeout_s: float = JOB_TIMEOUT_S
) -> TrainingJob:
    deadline = time.monotonic() + timeout_s
    while (job := backend.describe_training_job(job_name)).status == "InProgress":
        assert time.monotonic() < deadline, f"{job_name} still InProgress after {timeout_s} s"
        time.sleep(0.2)
    return job


def read_split(uri: str) -> pd.DataFrame:
    return pd.read_parquet(Path(uri.removeprefix("file://")) / "data.parquet")


def model_path(job: TrainingJob) -> Path:
    return Path(job.model_uri.removeprefix("file://")) / "model.joblib"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlops")
    cancer = load_breast_cancer(as_frame=True).frame
    diabetes = load_diabetes(as_frame=True).frame
    data = home / "data"
    return {
        "settings": Settings(home=home, allow_write=True),
        "cancer": (write_channels(data, "cancer", cancer, stratify=True), list(cancer.columns)),
        "diabetes": (write_channels(data, "diabetes", diabetes, stratify=False), list(diabetes.columns)),
    }


@pytest.fixture(scope="module")
def backend(workspace):
    return LocalTrainingBackend(workspace["settings"])


@pytest.fixture(scope="module")
def finished_jobs(workspace, backend):
    """Start the four supported algorithms together, then wait for all of them."""
    cancer, diabetes = workspace["cancer"], workspace["diabetes"]
    requests = [
        make_request(
            "xgb-cancer",
            "xgboost",
            "classification",
            *cancer,
            hyperparameters={"n_estimators": 100, "max_depth": 3, "early_stopping_rounds": 20},
        ),
        make_request(
            "rf-diabetes",
            "random_forest",
            "regression",
            *diabetes,
            hyperparameters={"n_estimators": 100, "max_depth": 6},
        ),
        make_request(
            "logreg-cancer",
            "logistic_regression",
            "classification",
            *cancer,
            hyperparameters={"C": 1.0, "l1_ratio": 0.5},
            preprocessing=PreprocessingSpec(
                scaling="minmax", feature_selection=FeatureSelectionSpec(method="correlation", k=10)
            ),
        ),
        make_request(
            "linreg-diabetes", "linear_regression", "regression", *diabetes, hyperparameters={"alpha": 0.5}
        ),
    ]
    for request in requests:
        assert backend.start_training_job(request).status == "InProgress"
    return {r.job_name: wait_until_done(backend, r.job_name) for r in requests}


@pytest.mark.slow
def test_xgboost_classification_completes_with_metrics_and_model(finished_jobs, workspace):
    job = finished_jobs["xgb-cancer"]
    assert job.status == "Completed", job.failure_reason
    assert job.secondary_status == "Completed"
    assert job.metrics["validation_f1"] > 0.9
    assert set(job.metrics) >= {
        "train_accuracy",
        "validation_accuracy",
        "validation_roc_auc",
        "validation_log_loss",
    }
    assert job.duration_s > 0 and job.started_at and job.ended_at
    model = joblib.load(model_path(job))
    validation = read_split(workspace["cancer"][0]["validation"])
    predictions = model.predict(validation.drop(columns=["target"]))
    assert accuracy_score(validation["target"], predictions) == pytest.approx(
        job.metrics["validation_accuracy"], abs=1e-5
    )
    metadata = json.loads((model_path(job).parent / "metadata.json").read_text())
    assert metadata["n_classes"] == 2 and metadata["task"] == "classification"
    assert metadata["hyperparameters"]["max_depth"] == 3
    assert 0 <= metadata["best_iteration"] < 100
    assert "xgboost" in metadata["library_versions"]


@pytest.mark.slow
def test_job_directory_follows_the_sagemaker_contract(finished_jobs, workspace):
    job_dir = workspace["settings"].home / "jobs" / "xgb-cancer"
    hyperparameters = json.loads((job_dir / "input/config/hyperparameters.json").read_text())
    assert all(isinstance(v, str) for v in hyperparameters.values())
    assert hyperparameters["n_estimators"] == "100"
    assert json.loads(hyperparameters["_preprocessing"])["encoding"] == "onehot"
    assert hyperparameters["_task"] == '"classification"'
    assert (job_dir / "input/data/train/data.parquet").is_file()
    status = json.loads((job_dir / "status.json").read_text())
    assert status["exit_code"] == 0 and status["status"] == "Completed"
    assert finished_jobs["xgb-cancer"].log_uri == (job_dir / "training.log").as_uri()


@pytest.mark.slow
def test_regressions_and_logistic_regression_complete(finished_jobs, workspace):
    for name in ("rf-diabetes", "linreg-diabetes"):
        job = finished_jobs[name]
        assert job.status == "Completed", job.failure_reason
        assert job.metrics["validation_r2"] > 0.3
        assert job.metrics["validation_rmse"] > 0
    logreg = finished_jobs["logreg-cancer"]
    assert logreg.status == "Completed", logreg.failure_reason
    assert logreg.metrics["validation_f1"] > 0.9
    linear = joblib.load(model_path(finished_jobs["linreg-diabetes"]))
    assert isinstance(linear.named_steps["model"], Ridge)
    rows = read_split(workspace["diabetes"][0]["validation"])
    r2 = r2_score(rows["target"], linear.predict(rows.drop(columns=["target"])))
    assert r2 == pytest.approx(finished_jobs["linreg-diabetes"].metrics["validation_r2"], abs=1e-5)
    selected = joblib.load(model_path(logreg)).named_steps["preprocess"].named_steps["select"]
    assert int(np.sum(selected.get_support())) == 10


@pytest.mark.slow
def test_each_job_is_one_finished_mlflow_run(finished_jobs, workspace):
    client = MlflowClient(tracking_uri=workspace["settings"].tracking_uri)
    job = finished_jobs["xgb-cancer"]
    run = client.get_run(job.tracking_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["validation_f1"] == pytest.approx(job.metrics["validation_f1"])
    assert run.data.params["max_depth"] == "3"
    assert run.data.params["preprocessing.scaling"] == "standard"
    assert run.data.tags["issue"] == "7" and run.data.tags["job_name"] == "xgb-cancer"
    assert client.get_experiment(run.info.experiment_id).name == "issue-7"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"training.log", "metadata.json"} <= artifacts


def test_crashing_program_fails_with_its_reason_and_keeps_the_log(workspace, backend):
    channels, columns = workspace["cancer"]
    request = make_request(
        "crash", "random_forest", "classification", channels, columns, target="no_such_column"
    )
    job = wait_until_done(backend, backend.start_training_job(request).job_name)
    assert job.status == "Failed"
    assert job.failure_reason.startswith("ValueError: target column 'no_such_column'")
    assert job.model_uri is None
    log = Path(job.log_uri.removeprefix("file://")).read_text()
    assert "Traceback" in log and "no_such_column" in log
    client = MlflowClient(tracking_uri=workspace["settings"].tracking_uri)
    assert client.get_run(job.tracking_run_id).info.status == "FAILED"


def test_job_over_its_time_limit_is_killed(workspace, backend):
    channels, columns = workspace["cancer"]
    request = make_request(
        "too-slow",
        "random_forest",
        "classification",
        channels,
        columns,
        hyperparameters={"n_estimators": 10_000},
        compute=ComputeSpec(max_runtime_s=1),
    )
    started = time.monotonic()
    job = wait_until_done(backend, backend.start_training_job(request).job_name)
    assert job.status == "Failed"
    assert job.secondary_status == "MaxRuntimeExceeded"
    assert "max_runtime_s of 1 seconds" in job.failure_reason
    assert time.monotonic() - started < 10
    pid = json.loads((workspace["settings"].home / "jobs/too-slow/job.json").read_text())["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_memory_limit_applies_to_the_job(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv(OWNER_ENV, str(tmp_path / "runtime.lease"))  # as under a runtime: a watchdog
    settings = Settings(home=tmp_path, allow_write=True, job_memory_limit_mb=512)
    channels, columns = workspace["cancer"]
    request = make_request(
        "tiny-memory", "xgboost", "classification", channels, columns, compute=ComputeSpec(max_runtime_s=30)
    )
    backend = LocalTrainingBackend(settings)
    job = wait_until_done(backend, backend.start_training_job(request).job_name)
    assert job.status == "Failed"
    assert "MemoryError" in (job.failure_reason or "")  # the limit, not the 30 s time limit, ended it


def test_starting_a_job_name_twice_runs_one_process(workspace, backend):
    channels, columns = workspace["cancer"]
    request = make_request("twice", "logistic_regression", "classification", channels, columns)
    first = backend.start_training_job(request)
    job_json = workspace["settings"].home / "jobs/twice/job.json"
    pid = json.loads(job_json.read_text())["pid"]
    second = backend.start_training_job(request)
    from_other_server = LocalTrainingBackend(workspace["settings"]).start_training_job(request)
    assert first.tracking_run_id == second.tracking_run_id == from_other_server.tracking_run_id
    assert json.loads(job_json.read_text())["pid"] == pid
    assert wait_until_done(backend, "twice").status == "Completed"
    client = MlflowClient(tracking_uri=workspace["settings"].tracking_uri)
    experiment = client.get_experiment_by_name("issue-7")
    runs = client.search_runs([experiment.experiment_id], "tags.job_name = 'twice'")
    assert len(runs) == 1


START_AND_DIE = """
import os, sys
from pathlib import Path
from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.core.models import TrainingJobRequest
from mcp_server.settings import Settings
backend = LocalTrainingBackend(Settings(home=Path(sys.argv[1]), allow_write=True))
backend.start_training_job(TrainingJobRequest.model_validate_json(sys.argv[2]))
os._exit(0)  # the server dies; its job keeps running in its own session
"""


def test_job_lost_by_a_server_restart_is_reported_failed(workspace):
    channels, columns = workspace["cancer"]
    request = make_request(
        "orphan",
        "random_forest",
        "classification",
        channels,
        columns,
        # long enough to still run when killed, however slow the start is on a loaded machine
        hyperparameters={"n_estimators": 200_000},
    )
    home = workspace["settings"].home
    subprocess.run(
        [sys.executable, "-c", START_AND_DIE, str(home), request.model_dump_json()],
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    restarted = LocalTrainingBackend(workspace["settings"])
    assert restarted.describe_training_job("orphan").status == "InProgress"  # still running
    pid = json.loads((home / "jobs/orphan/job.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (job := restarted.describe_training_job("orphan")).status == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job.status == "Failed"
    assert "ended while its runtime was stopped" in job.failure_reason
    assert json.loads((home / "jobs/orphan/status.json").read_text())["status"] == "Failed"
    client = MlflowClient(tracking_uri=workspace["settings"].tracking_uri)
    assert client.get_run(job.tracking_run_id).info.status == "FAILED"


def test_unknown_job_raises_not_found(backend):
    with pytest.raises(NotFoundError, match="no-such-job"):
        backend.describe_training_job("no-such-job")
    with pytest.raises(NotFoundError):
        backend.describe_training_job("../jobs")


def test_start_refuses_bad_channels(workspace, backend, tmp_path):
    channels, columns = workspace["cancer"]
    with pytest.raises(TrainingJobError, match="train channel is required"):
        backend.start_training_job(
            make_request(
                "no-train", "xgboost", "classification", {"validation": channels["validation"]}, columns
            )
        )
    with pytest.raises(TrainingJobError, match="file:// URI of an existing folder"):
        backend.start_training_job(
            make_request("s3-train", "xgboost", "classification", {"train": "s3://bucket/train/"}, columns)
        )
    with pytest.raises(
        TrainingJobError, match="control tasks train in their environment and take no channels"
    ):
        backend.start_training_job(make_request("ppo-with-data", "ppo", "control", channels, columns))
    assert not (workspace["settings"].home / "jobs" / "s3-train").exists()


def test_parse_metrics_keeps_the_last_value_of_each_metric():
    log = "\n".join(
        [
            "validation_f1=0.5",
            "noise line",
            "validation_f1=0.97",
            "train_r2=-1.5e-3",
            "validation_log_loss=nan",
            "Validation_F1=3",
            "x = 1",
            "train_rmse=inf",
        ]
    )
    metrics = parse_metrics(log)
    assert metrics["validation_f1"] == 0.97
    assert metrics["train_r2"] == -0.0015
    assert np.isnan(metrics["validation_log_loss"]) and metrics["train_rmse"] == float("inf")
    assert set(metrics) == {"validation_f1", "train_r2", "validation_log_loss", "train_rmse"}


def test_contract_paths_follow_the_environment(tmp_path):
    contract = TrainingContract.from_env(
        {
            "MLOPS_OPT_ML": str(tmp_path),
            "SM_CHANNEL_TRAIN": "/data/train",
            "SM_MODEL_DIR": "/models/m",
        }
    )
    assert contract.hyperparameters_file == tmp_path / "input/config/hyperparameters.json"
    assert contract.channel_dir("train") == Path("/data/train")
    assert contract.channel_dir("validation") == tmp_path / "input/data/validation"
    assert contract.model_dir == Path("/models/m")
    assert contract.failure_file == tmp_path / "output/failure"
    assert contract.output_data_dir == tmp_path / "output/data"
    assert contract.checkpoints_dir == tmp_path / "checkpoints"
    assert TrainingContract.from_env({}).root == Path("/opt/ml")


def test_contract_decodes_string_hyperparameters(tmp_path):
    contract = TrainingContract.from_env({"MLOPS_OPT_ML": str(tmp_path)})
    contract.hyperparameters_file.parent.mkdir(parents=True)
    contract.hyperparameters_file.write_text(
        json.dumps(
            {
                "n": "200",
                "rate": "0.1",
                "features": "sqrt",
                "quoted": '"sqrt"',
                "none": "null",
                "_preprocessing": '{"scaling": "none"}',
            }
        )
    )
    assert contract.read_hyperparameters() == {
        "n": 200,
        "rate": 0.1,
        "features": "sqrt",
        "quoted": "sqrt",
        "none": None,
        "_preprocessing": {"scaling": "none"},
    }


def test_run_writes_the_failure_file_and_exits_1(tmp_path, capsys):
    contract = TrainingContract.from_env({"MLOPS_OPT_ML": str(tmp_path)})

    def broken() -> None:
        raise KeyError("column 'x'")

    with pytest.raises(SystemExit) as exited:
        run(broken, contract)
    assert exited.value.code == 1
    failure = contract.failure_file.read_text()
    assert failure.startswith("KeyError: \"column 'x'\"")
    assert "Traceback" in failure and "in broken" in failure
    assert "Traceback" in capsys.readouterr().err


def test_preprocessor_encodes_selects_and_survives_joblib(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=200),
            "noise": rng.normal(size=200),
            "colour": rng.choice(["red", "green", None], size=200),
        }
    )
    frame.loc[::7, "x"] = np.nan
    y = ((frame["x"].fillna(0) > 0) | (frame["colour"] == "red")).to_numpy().astype(int)
    types = {"x": "numeric", "noise": "numeric", "colour": "categorical"}
    spec = {
        "missing_values": "drop",
        "encoding": "onehot",
        "scaling": "minmax",
        "feature_selection": {"method": "importance", "k": 50},
    }
    preprocessor, encoded = fit_preprocessor(build_preprocessor(spec, types, "classification"), frame, y)
    assert encoded.shape == (200, 4)  # 2 numeric + 2 colours; k=50 clipped to the width
    assert not np.isnan(encoded).any() and encoded.min() >= 0
    joblib.dump(preprocessor, tmp_path / "p.joblib")
    unseen = pd.DataFrame({"x": [0.5], "noise": [0.0], "colour": ["blue"]})
    assert joblib.load(tmp_path / "p.joblib").transform(unseen).shape == (1, 4)
    label_spec = {
        "encoding": "label",
        "scaling": "none",
        "feature_selection": {"method": "correlation", "k": 2},
    }
    label = build_preprocessor(label_spec, types, "classification")
    _, encoded = fit_preprocessor(label, frame, y)
    assert encoded.shape == (200, 2)
    with pytest.raises(ValueError, match="encoding must be onehot, label or target"):
        build_preprocessor({"encoding": "hash"}, types, "classification")
