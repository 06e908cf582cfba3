"""LocalEvaluationBackend on real prepared datasets and real fitted Pipelines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from mcp_server.backends.local.data import LocalDatasetBackend, path_from_uri
from mcp_server.backends.local.evaluation import LocalEvaluationBackend
from mcp_server.core.models import DatasetRef, EvaluationReport, EvaluationRequest
from mcp_server.core.spec import validate_spec
from mcp_server.errors import EvaluationError
from mcp_server.settings import Settings
from tests.conftest import make_model_folder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def prepare(settings: Settings, source: str, task: str) -> DatasetRef:
    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": task,
            "algorithm": "logistic_regression" if task == "classification" else "linear_regression",
            "dataset": {"source": source, "target": "target"},
        }
    )
    return LocalDatasetBackend(settings, base_dir=settings.home).prepare_dataset(spec)


def split(ref: DatasetRef, name: str) -> pd.DataFrame:
    return pd.read_parquet(path_from_uri(ref.splits[name]) / "data.parquet")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(home=tmp_path_factory.mktemp("evaluation"), allow_write=True)
    found: dict[str, Any] = {"settings": settings}
    for name, source, task, estimator, algorithm in [
        (
            "binary",
            "sklearn://breast_cancer",
            "classification",
            LogisticRegression(max_iter=2000),
            "logistic_regression",
        ),
        (
            "multiclass",
            "sklearn://iris",
            "classification",
            LogisticRegression(max_iter=2000),
            "logistic_regression",
        ),
        ("regression", "sklearn://diabetes", "regression", LinearRegression(), "linear_regression"),
    ]:
        ref = prepare(settings, source, task)
        folder = make_model_folder(settings.home / "jobs" / name / "model", ref, estimator, algorithm)
        found[name] = (ref, folder)
    return found


def evaluate(
    workspace: dict[str, Any], case: str, evaluation_id: str, metrics: list[str], run_id: str | None = None
) -> EvaluationReport:
    ref, folder = workspace[case]
    request = EvaluationRequest(
        evaluation_id=evaluation_id,
        task=ref.task,
        model_uri=folder.as_uri(),
        dataset=ref,
        metrics=metrics,
        tracking_run_id=run_id,
    )
    return LocalEvaluationBackend(workspace["settings"]).evaluate_model(request)


def assert_png(uri: str, min_bytes: int = 8_000) -> None:
    import matplotlib.image

    path = path_from_uri(uri)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > min_bytes, (path, len(data))
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 400 <= width <= 1400, (path, width)
    assert 400 <= height <= 1400, (path, height)


def test_binary_metrics_match_sklearn_and_files(workspace: dict[str, Any]) -> None:
    report = evaluate(workspace, "binary", "eval-binary", ["accuracy", "f1", "roc_auc"])
    ref, folder = workspace["binary"]
    test = split(ref, "test")
    model = joblib.load(folder / "model.joblib")
    x, y = test[ref.feature_names], test["target"].to_numpy()
    y_pred, proba = model.predict(x), model.predict_proba(x)
    assert report.n_test == len(test) == ref.split_sizes["test"]
    assert set(report.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert report.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    assert report.metrics["f1"] == pytest.approx(skm.f1_score(y, y_pred))
    assert report.metrics["precision"] == pytest.approx(skm.precision_score(y, y_pred))
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert report.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert 0.9 < report.metrics["accuracy"] <= 1.0
    assert set(report.plots) == {"confusion_matrix", "roc_curve"}
    for uri in report.plots.values():
        assert_png(uri)
    home = workspace["settings"].home
    assert path_from_uri(report.report_uri) == home / "evaluations" / "eval-binary" / "metrics.json"
    stored = json.loads(path_from_uri(report.report_uri).read_text())
    assert stored["metrics"] == report.metrics
    assert stored["n_test"] == report.n_test
    assert stored["dataset_id"] == ref.dataset_id
    assert report.duration_s > 0


def test_multiclass_one_vs_rest(workspace: dict[str, Any]) -> None:
    report = evaluate(workspace, "multiclass", "eval-multi", ["f1", "roc_auc"])
    ref, folder = workspace["multiclass"]
    test = split(ref, "test")
    model = joblib.load(folder / "model.joblib")
    x, y = test[ref.feature_names], test["target"].to_numpy()
    assert report.metrics["f1"] == pytest.approx(skm.f1_score(y, model.predict(x), average="macro"))
    assert report.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, model.predict_proba(x), multi_class="ovr")
    )
    assert_png(report.plots["confusion_matrix"])
    assert_png(report.plots["roc_curve"])


def test_regression_metrics_and_plots(workspace: dict[str, Any]) -> None:
    report = evaluate(workspace, "regression", "eval-reg", ["rmse", "r2"])
    ref, folder = workspace["regression"]
    test = split(ref, "test")
    y_pred = joblib.load(folder / "model.joblib").predict(test[ref.feature_names])
    y = test["target"].to_numpy()
    assert set(report.metrics) == {"rmse", "mae", "r2", "mape"}
    assert report.metrics["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, y_pred)))
    assert report.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, y_pred))
    assert report.metrics["r2"] == pytest.approx(skm.r2_score(y, y_pred))
    assert set(report.plots) == {"residuals", "predicted_vs_actual"}
    for uri in report.plots.values():
        assert_png(uri)


def test_metrics_and_plots_are_logged_to_the_tracking_run(workspace: dict[str, Any]) -> None:
    from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client

    settings = workspace["settings"]
    client = open_client(settings)
    run = client.create_run(ensure_experiment(client, "issue-1", settings))
    report = evaluate(workspace, "binary", "eval-tracked", ["accuracy"], run_id=run.info.run_id)
    logged = client.get_run(run.info.run_id).data.metrics
    assert logged == {f"test_{k}": pytest.approx(v) for k, v in report.metrics.items()}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert artifacts == {
        "evaluation/metrics.json",
        "evaluation/confusion_matrix.png",
        "evaluation/roc_curve.png",
    }


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_unknown_metric(workspace: dict[str, Any]) -> None:
    with pytest.raises(EvaluationError, match=r"unknown classification metrics \['rmse'\]; available"):
        evaluate(workspace, "binary", "eval-bad-metric", ["rmse"])


def test_unreadable_model(workspace: dict[str, Any], tmp_path: Path) -> None:
    ref, _ = workspace["binary"]
    request = EvaluationRequest(
        evaluation_id="eval-no-model",
        task="classification",
        model_uri=tmp_path.as_uri(),
        dataset=ref,
        metrics=["f1"],
    )
    with pytest.raises(EvaluationError, match=r"cannot load the model at file://.*model\.joblib"):
        LocalEvaluationBackend(workspace["settings"]).evaluate_model(request)


def test_metric_that_cannot_be_computed(workspace: dict[str, Any], tmp_path: Path) -> None:
    ref, folder = workspace["binary"]
    test = split(ref, "test")
    one_class = tmp_path / "test"
    one_class.mkdir()
    test[test["target"] == 1].to_parquet(one_class / "data.parquet")
    dataset = ref.model_copy(update={"splits": {**ref.splits, "test": one_class.as_uri()}})
    request = EvaluationRequest(
        evaluation_id="eval-one-class",
        task="classification",
        model_uri=folder.as_uri(),
        dataset=dataset,
        metrics=["roc_auc"],
    )
    with pytest.raises(EvaluationError, match=r"cannot compute \['roc_auc'\].*two classes"):
        LocalEvaluationBackend(workspace["settings"]).evaluate_model(request)


def test_unsupported_task(workspace: dict[str, Any]) -> None:
    ref, folder = workspace["binary"]
    request = EvaluationRequest(
        evaluation_id="eval-cluster",
        task="clustering",
        model_uri=folder.as_uri(),
        dataset=ref,
        metrics=["silhouette"],
    )
    with pytest.raises(EvaluationError, match="classification and regression models only"):
        LocalEvaluationBackend(workspace["settings"]).evaluate_model(request)


def test_predictions_are_codes(workspace: dict[str, Any]) -> None:
    ref, folder = workspace["multiclass"]
    predicted = joblib.load(folder / "model.joblib").predict(split(ref, "test")[ref.feature_names])
    assert set(np.unique(predicted)) <= {0, 1, 2}
