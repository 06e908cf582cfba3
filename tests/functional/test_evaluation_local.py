"""LocalEvaluationBackend: the evaluation processing job on real datasets and fitted Pipelines.

Each module fixture runs one real job (a subprocess under the processing contract); the tests
check its numbers against scikit-learn, SHAP, fairlearn and pandas computed here directly. A job
takes 1.5-3 s; those with SHAP or MLflow tracking (3-8 s with their fixture) are marked slow.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from xgboost import XGBClassifier

from mcp_server.backends.local.data import LocalDatasetBackend, path_from_uri
from mcp_server.backends.local.evaluation import LocalEvaluationBackend
from mcp_server.core.models import DatasetRef, EvaluationReport, EvaluationRequest
from mcp_server.core.spec.schema import FairnessSpec, validate_spec
from mcp_server.errors import EvaluationError
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT, make_model_folder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSIFICATION_PLOTS = {"confusion_matrix", "roc_curve", "precision_recall", "learning_curve"}
REGRESSION_PLOTS = {"residuals", "predicted_vs_actual", "learning_curve"}


class SlowModel(ClassifierMixin, BaseEstimator):
    """A classifier whose predict sleeps: the job outlives its time limit."""

    def fit(self, X: Any, y: Any) -> SlowModel:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        time.sleep(120)
        return np.zeros(len(X), dtype=int)


def prepare(settings: Settings, source: str, task: str, target: str = "target") -> DatasetRef:
    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": task,
            "algorithm": "xgboost",
            "dataset": {"source": source, "target": target},
        }
    )
    return LocalDatasetBackend(settings, base_dir=REPO_ROOT).prepare_dataset(spec)


def split(ref: DatasetRef, name: str) -> pd.DataFrame:
    return pd.read_parquet(path_from_uri(ref.splits[name]) / "data.parquet")


def loan_model_folder(folder: Path, ref: DatasetRef) -> Path:
    """An XGBoost Pipeline over the loan dataset's numeric and categorical columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c, kind in ref.feature_types.items() if kind == "numeric"]
    categorical = [c for c, kind in ref.feature_types.items() if kind == "categorical"]
    preprocess = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    model = XGBClassifier(n_estimators=150, max_depth=2, learning_rate=0.1, n_jobs=2, random_state=0)
    train = split(ref, "train")
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    pipeline.fit(train[ref.feature_names], train[ref.target])
    folder.mkdir(parents=True)
    joblib.dump(pipeline, folder / "model.joblib")
    metadata = {
        "algorithm": "xgboost",
        "task": "classification",
        "target": ref.target,
        "feature_names": ref.feature_names,
        "feature_types": ref.feature_types,
        "n_classes": 2,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def evaluate(
    settings: Settings, case: tuple[DatasetRef, Path], evaluation_id: str, **options: Any
) -> EvaluationReport:
    ref, folder = case
    request = EvaluationRequest(
        evaluation_id=evaluation_id,
        task=ref.task,
        model_uri=folder.as_uri(),
        dataset=ref,
        **{"metrics": ["accuracy"] if ref.task == "classification" else ["rmse"], **options},
    )
    return LocalEvaluationBackend(settings).evaluate_model(request)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Datasets and model folders, one workspace; reports are computed by the fixtures below."""
    settings = Settings(home=tmp_path_factory.mktemp("evaluation"), allow_write=True)
    models = settings.home / "jobs"
    binary = prepare(settings, "sklearn://breast_cancer", "classification")
    iris = prepare(settings, "sklearn://iris", "classification")
    diabetes = prepare(settings, "sklearn://diabetes", "regression")
    loan = prepare(settings, "file://examples/data/loan_approval.csv", "classification", "approved")
    xgb = XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, n_jobs=2, random_state=0)
    forest = RandomForestClassifier(n_estimators=50, random_state=0)
    return {
        "settings": settings,
        "xgb": (binary, make_model_folder(models / "xgb", binary, xgb, "xgboost")),
        "logistic": (
            binary,
            make_model_folder(
                models / "lr", binary, LogisticRegression(max_iter=5000), "logistic_regression"
            ),
        ),
        "forest": (iris, make_model_folder(models / "rf", iris, forest, "random_forest")),
        "linear": (
            diabetes,
            make_model_folder(models / "ols", diabetes, LinearRegression(), "linear_regression"),
        ),
        "loan": (loan, loan_model_folder(models / "loan", loan)),
    }


@pytest.fixture(scope="module")
def xgb_report(world: dict[str, Any]) -> EvaluationReport:
    return evaluate(
        world["settings"], world["xgb"], "eval-xgb", metrics=["f1", "roc_auc"], explainability="shap"
    )


@pytest.fixture(scope="module")
def loan_report(world: dict[str, Any]) -> EvaluationReport:
    fairness = FairnessSpec(sensitive_feature="age_group", max_difference=0.15)
    return evaluate(world["settings"], world["loan"], "eval-loan", fairness=fairness)


def assert_png(uri: str, min_bytes: int = 8_000) -> None:
    import matplotlib.image

    path = path_from_uri(uri)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > min_bytes, (path, len(data))
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 400 <= width <= 1400, (path, width)
    assert 400 <= height <= 1400, (path, height)


def expected_classification(case: tuple[DatasetRef, Path], name: str) -> dict[str, float]:
    ref, folder = case
    frame = split(ref, name)
    model = joblib.load(folder / "model.joblib")
    x, y = frame[ref.feature_names], frame[ref.target].to_numpy()
    y_pred, proba = model.predict(x), model.predict_proba(x)
    average = "binary" if proba.shape[1] == 2 else "macro"
    return {
        "accuracy": skm.accuracy_score(y, y_pred),
        "precision": skm.precision_score(y, y_pred, average=average, zero_division=0),
        "recall": skm.recall_score(y, y_pred, average=average, zero_division=0),
        "f1": skm.f1_score(y, y_pred, average=average, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1])
        if average == "binary"
        else skm.roc_auc_score(y, proba, multi_class="ovr"),
        "log_loss": skm.log_loss(y, proba, labels=list(range(proba.shape[1]))),
    }


# ---------------------------------------------------------------------------------------------
# Metrics, plots, SHAP, baseline
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_binary_metrics_match_sklearn_on_every_split(
    world: dict[str, Any], xgb_report: EvaluationReport
) -> None:
    ref, _ = world["xgb"]
    for name, found in [
        ("test", xgb_report.metrics),
        ("validation", xgb_report.validation_metrics),
        ("train", xgb_report.train_metrics),
    ]:
        expected = expected_classification(world["xgb"], name)
        assert found == pytest.approx(expected, rel=1e-6), name
    assert xgb_report.gaps == pytest.approx(
        {k: xgb_report.train_metrics[k] - xgb_report.metrics[k] for k in xgb_report.metrics}
    )
    assert xgb_report.gaps["accuracy"] > 0  # a boosted model fits its training rows better
    assert (xgb_report.n_test, xgb_report.n_validation) == (
        ref.split_sizes["test"],
        ref.split_sizes["validation"],
    )
    train = split(ref, "train")["target"]
    assert xgb_report.class_counts == {
        "malignant": int((train == 0).sum()),
        "benign": int((train == 1).sum()),
    }
    assert xgb_report.metrics["accuracy"] > 0.9


@pytest.mark.slow
def test_classification_plots_and_files(world: dict[str, Any], xgb_report: EvaluationReport) -> None:
    assert set(xgb_report.plots) == CLASSIFICATION_PLOTS | {"shap_summary"}
    for uri in xgb_report.plots.values():
        assert_png(uri)
    job = world["settings"].home / "evaluations" / "eval-xgb"
    assert path_from_uri(xgb_report.report_uri) == job / "output" / "report.json"
    assert path_from_uri(xgb_report.log_uri) == job / "evaluation.log"
    stored = json.loads(path_from_uri(xgb_report.report_uri).read_text())
    assert stored["metrics"] == xgb_report.metrics
    assert stored["plots"]["roc_curve"] == "plots/roc_curve.png"
    curve = stored["learning_curve"]  # per boosting round, from the fitted booster
    assert (curve["metric"], curve["x"][0], curve["x"][-1]) == ("log_loss", 1, 100)
    assert curve["series"]["validation"][-1] == pytest.approx(xgb_report.validation_metrics["log_loss"])
    assert curve["series"]["train"][-1] == pytest.approx(xgb_report.train_metrics["log_loss"])
    assert curve["series"]["validation"][0] > 2 * curve["series"]["validation"][-1]
    assert "test_f1=" in path_from_uri(xgb_report.log_uri).read_text()
    assert xgb_report.duration_s > 0


@pytest.mark.slow
def test_shap_tree_explainer_matches_shap_directly(
    world: dict[str, Any], xgb_report: EvaluationReport
) -> None:
    import shap

    ref, folder = world["xgb"]
    pipeline = joblib.load(folder / "model.joblib")
    rows = pipeline[:-1].transform(split(ref, "test")[ref.feature_names])
    values = shap.TreeExplainer(pipeline[-1]).shap_values(rows)
    importance = dict(zip(ref.feature_names, np.abs(values).mean(axis=0), strict=True))
    summary = xgb_report.shap
    assert summary is not None
    assert (summary.explainer, summary.sample_size, summary.background_size) == ("tree", len(rows), None)
    top = [f.mean_abs_shap for f in summary.top_features]
    assert len(top) == 10 and top == sorted(top, reverse=True)
    expected = sorted(importance.items(), key=lambda item: -item[1])[:10]
    assert [f.feature for f in summary.top_features] == [name for name, _ in expected]
    assert top == pytest.approx([value for _, value in expected], rel=1e-4)
    assert 0 < summary.duration_s < 30


@pytest.mark.slow
def test_logistic_regression_gets_linear_shap_and_a_refitted_learning_curve(world: dict[str, Any]) -> None:
    report = evaluate(world["settings"], world["logistic"], "eval-logistic", explainability="shap")
    assert report.metrics == pytest.approx(expected_classification(world["logistic"], "test"), rel=1e-6)
    summary = report.shap
    assert summary is not None
    assert summary.explainer == "linear"
    assert summary.sample_size == report.n_test
    assert summary.background_size == 100
    top = [f.mean_abs_shap for f in summary.top_features]
    assert top == sorted(top, reverse=True) and top[0] > 0
    assert set(report.plots) == CLASSIFICATION_PLOTS | {"shap_summary"}
    assert_png(report.plots["learning_curve"])


@pytest.mark.slow
def test_multiclass_forest_one_vs_rest_and_shap_per_class(world: dict[str, Any]) -> None:
    report = evaluate(
        world["settings"], world["forest"], "eval-forest", metrics=["f1", "roc_auc"], explainability="shap"
    )
    assert report.metrics == pytest.approx(expected_classification(world["forest"], "test"), rel=1e-6)
    assert set(report.class_counts or {}) == {"setosa", "versicolor", "virginica"}
    assert sum((report.class_counts or {}).values()) == world["forest"][0].split_sizes["train"]
    for name in CLASSIFICATION_PLOTS | {"shap_summary"}:
        assert_png(report.plots[name])
    assert report.shap is not None and report.shap.explainer == "tree"
    assert {f.feature for f in report.shap.top_features} == set(world["forest"][0].feature_names)
    curve = json.loads(path_from_uri(report.report_uri).read_text())["learning_curve"]
    assert (curve["x_label"], curve["x"][-1]) == ("number of trees", 50)  # the forest's 50 trees
    assert curve["series"]["validation"][-1] == pytest.approx(report.validation_metrics["log_loss"])


def test_regression_metrics_plots_and_fairness_on_mae(world: dict[str, Any]) -> None:
    fairness = FairnessSpec(sensitive_feature="sex", max_difference=100.0)
    report = evaluate(
        world["settings"], world["linear"], "eval-linear", metrics=["rmse", "r2"], fairness=fairness
    )
    ref, folder = world["linear"]
    test = split(ref, "test")
    y_pred = joblib.load(folder / "model.joblib").predict(test[ref.feature_names])
    y = test["target"].to_numpy()
    assert report.metrics == pytest.approx(
        {
            "rmse": math.sqrt(skm.mean_squared_error(y, y_pred)),
            "mae": skm.mean_absolute_error(y, y_pred),
            "r2": skm.r2_score(y, y_pred),
            "mape": skm.mean_absolute_percentage_error(y, y_pred),
        }
    )
    assert set(report.validation_metrics) == set(report.gaps) == {"rmse", "mae", "r2", "mape"}
    assert report.class_counts is None
    assert set(report.plots) == REGRESSION_PLOTS
    for uri in report.plots.values():
        assert_png(uri)
    curve = json.loads(path_from_uri(report.report_uri).read_text())["learning_curve"]
    assert curve["x"][-1] == ref.split_sizes["train"]  # refitted on 20 % .. 100 % of the rows
    assert len(curve["x"]) == 5 and curve["x"][0] < ref.split_sizes["train"] / 4
    assert curve["series"]["validation"][-1] == pytest.approx(report.validation_metrics["rmse"])
    assert report.fairness is not None and report.fairness.metric == "mae"
    groups = test["sex"].astype(str)
    by_group = {g: skm.mean_absolute_error(y[groups == g], y_pred[groups == g]) for g in groups.unique()}
    assert {g: v["mae"] for g, v in report.fairness.by_group.items()} == pytest.approx(by_group)
    assert report.fairness.difference == pytest.approx(max(by_group.values()) - min(by_group.values()))
    assert report.fairness.passed


def test_fairness_matches_fairlearn_metric_frame(
    world: dict[str, Any], loan_report: EvaluationReport
) -> None:
    from fairlearn.metrics import MetricFrame, selection_rate

    ref, folder = world["loan"]
    test = split(ref, "test")
    y_pred = joblib.load(folder / "model.joblib").predict(test[ref.feature_names])
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "accuracy": skm.accuracy_score,
            "recall": skm.recall_score,
        },
        y_true=test["approved"],
        y_pred=y_pred,
        sensitive_features=test["age_group"],
    )
    report = loan_report.fairness
    assert report is not None
    assert (report.sensitive_feature, report.metric, report.max_difference) == (
        "age_group",
        "selection_rate",
        0.15,
    )
    assert set(report.by_group) == {"18-29", "30-49", "50+"}
    for group, row in frame.by_group.iterrows():
        found = report.by_group[str(group)]
        assert found["selection_rate"] == pytest.approx(row["selection_rate"])
        assert found["accuracy"] == pytest.approx(row["accuracy"])
        assert found["recall"] == pytest.approx(row["recall"])
        assert found["count"] == (test["age_group"] == group).sum()
    assert report.difference == pytest.approx(frame.difference()["selection_rate"])
    assert report.ratio == pytest.approx(frame.ratio()["selection_rate"])
    assert report.difference > 0.01  # the shipped data carries a mild disparity
    assert report.passed == (report.difference <= 0.15)
    assert loan_report.shap is None and "shap_summary" not in loan_report.plots


def test_baseline_matches_pandas_on_the_training_split(
    world: dict[str, Any], loan_report: EvaluationReport
) -> None:
    ref, _ = world["loan"]
    train = split(ref, "train")
    assert loan_report.baseline_uri is not None
    baseline = json.loads(path_from_uri(loan_report.baseline_uri).read_text())
    assert baseline["version"] == 2
    assert len(baseline["features"]["existing_debt"]["sample"]) == min(
        2000, train["existing_debt"].notna().sum()
    )
    assert set(baseline["target_distribution"]["frequencies"]) == set(ref.class_labels or [])
    assert baseline["feature_names"] == ref.feature_names
    assert baseline["n_rows"] == len(train)
    debt = baseline["features"]["existing_debt"]
    values = train["existing_debt"]
    assert debt["missing_fraction"] == pytest.approx(values.isna().mean()) and debt["missing_fraction"] > 0
    assert debt["count"] == values.notna().sum()
    quantiles = values.quantile([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    assert [debt[p] for p in ("p1", "p5", "p25", "p50", "p75", "p95", "p99")] == pytest.approx(
        list(quantiles)
    )
    assert (debt["mean"], debt["std"], debt["min"], debt["max"]) == pytest.approx(
        (values.mean(), values.std(), values.min(), values.max())
    )
    for name in ("income", "loan_amount", "credit_history_years", "existing_debt"):
        histogram = baseline["features"][name]["histogram"]
        assert sum(histogram["fractions"]) == pytest.approx(1.0)
        assert len(histogram["edges"]) == len(histogram["fractions"]) + 1
        assert histogram["edges"] == sorted(histogram["edges"])
    income = baseline["features"]["income"]["histogram"]
    assert len(income["fractions"]) == 10 and max(income["fractions"]) < 0.12  # deciles: ~0.1 each
    employment = baseline["features"]["employment_type"]
    assert employment["type"] == "categorical"
    assert employment["frequencies"] == pytest.approx(
        train["employment_type"].value_counts(normalize=True).to_dict()
    )


# ---------------------------------------------------------------------------------------------
# The job: idempotency, tracking, failures, time limit
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_second_call_returns_the_report_without_running_again(
    world: dict[str, Any], xgb_report: EvaluationReport
) -> None:
    log = path_from_uri(xgb_report.log_uri)
    before = log.stat().st_mtime_ns
    started = time.perf_counter()
    again = evaluate(
        world["settings"], world["xgb"], "eval-xgb", metrics=["f1", "roc_auc"], explainability="shap"
    )
    assert time.perf_counter() - started < 1.0
    assert log.stat().st_mtime_ns == before
    assert again == xgb_report


@pytest.mark.slow
def test_metrics_and_outputs_are_logged_to_the_tracking_run(world: dict[str, Any]) -> None:
    from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client

    settings = world["settings"]
    client = open_client(settings)
    run_id = client.create_run(ensure_experiment(client, "issue-1", settings)).info.run_id
    report = evaluate(settings, world["logistic"], "eval-tracked", tracking_run_id=run_id)
    logged = client.get_run(run_id).data.metrics
    expected = {
        **{f"test_{k}": v for k, v in report.metrics.items()},
        **{f"validation_{k}": v for k, v in report.validation_metrics.items()},
        **{f"gap_{k}": v for k, v in report.gaps.items()},
    }
    assert logged == pytest.approx(expected)
    assert len(logged) == 18
    top = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {
        "evaluation/report.json",
        "evaluation/evaluation.log",
        "evaluation/plots",
        "evaluation/baseline",
    } <= top
    plots = {a.path for a in client.list_artifacts(run_id, "evaluation/plots")}
    assert plots == {f"evaluation/plots/{name}.png" for name in CLASSIFICATION_PLOTS}
    assert [a.path for a in client.list_artifacts(run_id, "evaluation/baseline")] == [
        "evaluation/baseline/baseline.json"
    ]


def test_missing_sensitive_column_names_it_and_the_available_ones(world: dict[str, Any]) -> None:
    fairness = FairnessSpec(sensitive_feature="gender", max_difference=0.1)
    with pytest.raises(EvaluationError) as raised:
        evaluate(world["settings"], world["loan"], "eval-no-column", fairness=fairness)
    message = str(raised.value)
    assert "ValueError: fairness.sensitive_feature 'gender' is not a column of the test split" in message
    assert "age_group" in message and "employment_type" in message
    assert "evaluation.log" in message
    assert not (world["settings"].home / "evaluations" / "eval-no-column" / "output" / "report.json").exists()


def test_metric_that_cannot_be_computed(world: dict[str, Any], tmp_path: Path) -> None:
    ref, folder = world["logistic"]
    test = split(ref, "test")
    one_class = tmp_path / "test"
    one_class.mkdir()
    test[test["target"] == 1].to_parquet(one_class / "data.parquet")
    dataset = ref.model_copy(update={"splits": {**ref.splits, "test": one_class.as_uri()}})
    with pytest.raises(EvaluationError, match=r"cannot compute \['roc_auc'\].*two classes"):
        evaluate(world["settings"], (dataset, folder), "eval-one-class", metrics=["roc_auc"])


def test_job_over_its_time_limit_is_stopped(world: dict[str, Any]) -> None:
    ref, _ = world["xgb"]
    folder = make_model_folder(world["settings"].home / "jobs" / "slow", ref, SlowModel(), "slow")
    started = time.perf_counter()
    with pytest.raises(
        EvaluationError, match=r"^MaxRuntimeExceeded: evaluation eval-slow ran longer than .* 3 seconds"
    ):
        evaluate(world["settings"], (ref, folder), "eval-slow", max_runtime_s=3)
    assert time.perf_counter() - started < 15
    status = json.loads((world["settings"].home / "evaluations" / "eval-slow" / "status.json").read_text())
    assert status["timed_out"] is True and status["exit_code"] < 0


@pytest.mark.slow
def test_registry_keeps_the_evaluation_baseline(world: dict[str, Any], xgb_report: EvaluationReport) -> None:
    from mcp_server.backends.local.mlflow_store import open_client
    from mcp_server.backends.local.registry import LocalRegistryBackend
    from mcp_server.core.models import Lineage, RegistrationRequest

    ref, folder = world["xgb"]
    settings = world["settings"]
    request = RegistrationRequest(
        model_name="baseline-check",
        model_uri=folder.as_uri(),
        tracking_run_id=None,
        metrics=xgb_report.metrics,
        lineage=Lineage(
            issue_number=3,
            execution_name="exec-baseline",
            job_name="job-baseline",
            spec_hash="0123456789ab",
            data_version=ref.data_version,
            dataset_id=ref.dataset_id,
        ),
        model_type="supervised_learning",
        algorithm="xgboost",
        feature_names=ref.feature_names,
        hyperparameters={"n_estimators": 100},
        preprocessing={},
        baseline_uri=xgb_report.baseline_uri,
    )
    registered = LocalRegistryBackend(settings).register_model(request)
    copied = settings.home / "models" / "baseline-check" / registered.version / "baseline.json"
    assert copied.read_bytes() == path_from_uri(xgb_report.baseline_uri).read_bytes()
    client = open_client(settings)
    assert (
        client.get_model_version("baseline-check", registered.version).tags["baseline_uri"]
        == xgb_report.baseline_uri
    )
    assert [a.path for a in client.list_artifacts(registered.run_id, "baseline")] == [
        "baseline/baseline.json"
    ]


# ---------------------------------------------------------------------------------------------
# Requests refused before any job starts
# ---------------------------------------------------------------------------------------------


def test_unknown_metric(world: dict[str, Any]) -> None:
    with pytest.raises(EvaluationError, match=r"unknown classification metrics \['rmse'\]; available"):
        evaluate(world["settings"], world["xgb"], "eval-bad-metric", metrics=["rmse"])


def test_unreadable_model(world: dict[str, Any], tmp_path: Path) -> None:
    ref, _ = world["xgb"]
    with pytest.raises(EvaluationError, match=r"cannot load the model at file://.*model\.joblib"):
        evaluate(world["settings"], (ref, tmp_path), "eval-no-model")
    assert not (world["settings"].home / "evaluations" / "eval-no-model" / "evaluation.log").exists()


def test_a_control_evaluation_without_an_environment_is_refused(world: dict[str, Any]) -> None:
    ref, folder = world["xgb"]
    request = EvaluationRequest(
        evaluation_id="eval-control",
        task="control",
        model_uri=folder.as_uri(),
        dataset=ref,
        metrics=["mean_return"],
    )
    with pytest.raises(EvaluationError, match="needs the environment to play episodes in"):
        LocalEvaluationBackend(world["settings"]).evaluate_model(request)
