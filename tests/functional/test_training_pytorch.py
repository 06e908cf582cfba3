"""The PyTorch program (``neural_network``) through the real LocalTrainingBackend.

The jobs of the module start together once (torch's import and training take 15 to 25 s in all,
hence ``slow``): breast cancer classification twice with the same seed (determinism), diabetes
regression, and a classification with a patience of 2 (early stopping).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.core.models import TrainingJob, TrainingJobRequest
from mcp_server.core.spec.schema import ComputeSpec, PreprocessingSpec
from mcp_server.settings import Settings
from tests.conftest import write_channels

JOB_TIMEOUT_S = 240
#: Epochs for the early-stopping job: far more than a patience of 2 lets it run.
MAX_EPOCHS = 300


def request(
    job_name: str, task: str, channels: dict[str, str], columns: list[str], **hp
) -> TrainingJobRequest:
    """A neural_network job on numeric columns with the given hyperparameters."""
    return TrainingJobRequest(
        job_name=job_name,
        task=task,
        algorithm="neural_network",
        hyperparameters=hp,
        preprocessing=PreprocessingSpec(),
        target="target",
        feature_types={c: "numeric" for c in columns if c != "target"},
        channels=channels,
        compute=ComputeSpec(max_runtime_s=JOB_TIMEOUT_S),
        experiment="issue-9",
        tags={"issue": "9", "spec_hash": "nn0001"},
    )


def wait(backend: LocalTrainingBackend, job_name: str) -> TrainingJob:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (job := backend.describe_training_job(job_name)).status == "InProgress":
        assert time.monotonic() < deadline, f"{job_name} still InProgress after {JOB_TIMEOUT_S} s"
        time.sleep(0.2)
    assert job.status == "Completed", job.failure_reason
    return job


def model_dir(job: TrainingJob) -> Path:
    return Path(job.model_uri.removeprefix("file://"))


def validation_rows(channels: dict[str, str]) -> pd.DataFrame:
    return pd.read_parquet(Path(channels["validation"].removeprefix("file://")) / "data.parquet")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlops")
    cancer = load_breast_cancer(as_frame=True).frame
    diabetes = load_diabetes(as_frame=True).frame
    c = write_channels(home / "data", "cancer", cancer, stratify=True)
    d = write_channels(home / "data", "diabetes", diabetes, stratify=False)
    backend = LocalTrainingBackend(Settings(home=home, allow_write=True))
    requests = [
        request("nn-cancer-a", "classification", c, list(cancer.columns)),
        request("nn-cancer-b", "classification", c, list(cancer.columns)),
        request("nn-diabetes", "regression", d, list(diabetes.columns), epochs=200),
        request(
            "nn-patience",
            "classification",
            c,
            list(cancer.columns),
            epochs=MAX_EPOCHS,
            early_stopping_patience=2,
            learning_rate=0.01,
        ),
    ]
    for r in requests:
        assert backend.start_training_job(r).status == "InProgress"
    return {"cancer": c, "diabetes": d} | {r.job_name: wait(backend, r.job_name) for r in requests}


@pytest.mark.slow
def test_classification_reaches_a_high_validation_f1(jobs):
    job = jobs["nn-cancer-a"]
    assert job.metrics["validation_f1"] > 0.9
    assert {"train_accuracy", "validation_roc_auc", "validation_log_loss"} <= set(job.metrics)
    metadata = json.loads((model_dir(job) / "metadata.json").read_text())
    assert metadata["algorithm"] == "neural_network" and metadata["n_classes"] == 2
    assert {"torch", "skorch"} <= set(metadata["library_versions"])
    model = joblib.load(model_dir(job) / "model.joblib")
    proba = model.predict_proba(validation_rows(jobs["cancer"]).drop(columns=["target"]))
    assert proba.shape[1] == 2 and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_regression_reaches_r2_above_0_3_with_flat_predictions(jobs):
    job = jobs["nn-diabetes"]
    assert job.metrics["validation_r2"] > 0.3
    model = joblib.load(model_dir(job) / "model.joblib")
    predictions = model.predict(validation_rows(jobs["diabetes"]).drop(columns=["target"]))
    assert predictions.ndim == 1


@pytest.mark.slow
def test_the_same_seed_gives_identical_predictions(jobs):
    rows = validation_rows(jobs["cancer"]).drop(columns=["target"])
    a, b = (joblib.load(model_dir(jobs[n]) / "model.joblib") for n in ("nn-cancer-a", "nn-cancer-b"))
    np.testing.assert_array_equal(a.predict_proba(rows), b.predict_proba(rows))
    assert jobs["nn-cancer-a"].metrics == jobs["nn-cancer-b"].metrics


@pytest.mark.slow
def test_early_stopping_stops_before_the_maximum_epochs(jobs):
    metadata = json.loads((model_dir(jobs["nn-patience"]) / "metadata.json").read_text())
    assert metadata["stopped_early"] is True
    assert metadata["epochs_trained"] < MAX_EPOCHS
    assert metadata["best_epoch"] <= metadata["epochs_trained"] - 2  # at least patience 2 after it


@pytest.mark.slow
def test_the_saved_model_loads_and_predicts_in_a_fresh_process(jobs):
    path = model_dir(jobs["nn-cancer-a"]) / "model.joblib"
    rows = Path(jobs["cancer"]["validation"].removeprefix("file://")) / "data.parquet"
    script = (
        "import joblib, pandas as pd; "
        f"m = joblib.load({str(path)!r}); X = pd.read_parquet({str(rows)!r}).drop(columns=['target']); "
        "print(int(m.predict(X).sum()), len(X))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=path.parent, timeout=120
    )
    assert result.returncode == 0, result.stderr
    positives, total = map(int, result.stdout.split())
    assert total == len(validation_rows(jobs["cancer"])) and 0 < positives < total


@pytest.mark.slow
@pytest.mark.parametrize(("job_name", "dataset"), [("nn-cancer-a", "cancer"), ("nn-diabetes", "diabetes")])
def test_the_explainers_batch_predict_gives_the_networks_own_predictions(jobs, job_name, dataset):
    from training_containers.evaluation.explain import batch_predict

    pipeline = joblib.load(model_dir(jobs[job_name]) / "model.joblib")
    head = pipeline.named_steps["model"]
    features = validation_rows(jobs[dataset]).drop(columns=["target"])
    rows = pipeline.named_steps["preprocess"].transform(features)
    own = head.predict_proba(rows) if dataset == "cancer" else head.predict(rows)
    fast = batch_predict(head)
    assert not inspect.ismethod(fast)  # the one-pass function, not the network's own method
    np.testing.assert_allclose(fast(rows), own, rtol=1e-5, atol=1e-6)
