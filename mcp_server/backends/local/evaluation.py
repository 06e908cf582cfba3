"""Local evaluation: score a trained model on the test split, write metrics.json and plots.

A trained model is a folder holding ``model.joblib`` (a scikit-learn Pipeline that takes the raw
feature columns as a DataFrame) and ``metadata.json`` (algorithm, task, target, feature_names,
feature_types, n_classes, hyperparameters). Results go to
``settings.home/evaluations/{evaluation_id}/`` (the README, "What a run leaves behind"):
``metrics.json`` plus ``confusion_matrix.png`` and ``roc_curve.png`` (classification) or
``residuals.png`` and ``predicted_vs_actual.png`` (regression). With a tracking run, the test
metrics are logged to it as ``test_<metric>`` and the folder as artifacts under ``evaluation/``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from mcp_server.backends.base import EvaluationBackend
from mcp_server.backends.local.data import path_from_uri
from mcp_server.core.catalog import METRICS_BY_TASK
from mcp_server.core.models import EvaluationReport, EvaluationRequest
from mcp_server.errors import EvaluationError
from mcp_server.settings import Settings
from training_containers.common.metrics import classification_metrics, regression_metrics

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DPI = 100


@dataclass(frozen=True)
class Scored:
    """Test-split truth and predictions: ``y_true``/``y_pred`` shape (n,), ``y_proba`` (n, K)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    y_proba: np.ndarray | None


class LocalEvaluationBackend(EvaluationBackend):
    """Evaluates trained model folders on prepared test splits, in the local workspace.

    Args:
        settings: the workspace (``settings.home``) and the MLflow store for tracking runs.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def evaluate_model(self, request: EvaluationRequest) -> EvaluationReport:
        """Score the model on the test split, write metrics.json and plots, log to MLflow.

        Args:
            request: the model folder URI, the DatasetRef (its ``test`` split is read), the
                metrics wanted and optionally the MLflow run to log into.

        Returns:
            The report: every metric of the task (``METRICS_BY_TASK``) that could be computed,
            a superset of ``request.metrics``; plot name -> PNG URI; the metrics.json URI;
            ``n_test`` rows; ``duration_s`` in seconds.

        Raises:
            EvaluationError: an unsupported task or unknown metric, an unreadable model or
                split, a scoring failure, a requested metric that cannot be computed (e.g.
                roc_auc with one class in the test split), or a tracking failure.
        """
        started = time.perf_counter()
        _check_request(request)
        model, metadata = _load_model(request.model_uri)
        frame = _load_test_split(request)
        scored = _score(model, metadata, frame, request)
        metrics = _metrics(scored, request)
        folder = self._settings.home / "evaluations" / request.evaluation_id
        folder.mkdir(parents=True, exist_ok=True)
        plots = _write_plots(request.task, scored, request.dataset.class_labels, folder)
        report_path = folder / "metrics.json"
        report_path.write_text(json.dumps(_report_body(request, metrics, len(frame)), indent=2))
        if request.tracking_run_id:
            self._log_to_run(request.tracking_run_id, metrics, folder)
        return EvaluationReport(
            evaluation_id=request.evaluation_id,
            metrics=metrics,
            n_test=len(frame),
            plots={name: path.as_uri() for name, path in plots.items()},
            report_uri=report_path.as_uri(),
            duration_s=round(time.perf_counter() - started, 3),
        )

    def _log_to_run(self, run_id: str, metrics: dict[str, float], folder: Path) -> None:
        """Log ``test_<metric>`` values and the evaluation folder to an existing MLflow run."""
        from mlflow.entities import Metric

        from mcp_server.backends.local.mlflow_store import open_client

        now = int(time.time() * 1000)
        try:
            client = open_client(self._settings)
            client.log_batch(run_id, metrics=[Metric(f"test_{k}", v, now, 0) for k, v in metrics.items()])
            client.log_artifacts(run_id, str(folder), artifact_path="evaluation")
        except Exception as err:  # MlflowException, or an OSError from the artifact store
            raise EvaluationError(
                f"cannot log the evaluation to MLflow run {run_id}: {err}; check that the run exists "
                f"in {self._settings.tracking_uri}"
            ) from err


def _check_request(request: EvaluationRequest) -> None:
    if request.task not in ("classification", "regression"):
        raise EvaluationError(
            f"task {request.task!r}: the local evaluation scores classification and regression models only"
        )
    if not _ID.match(request.evaluation_id):
        raise EvaluationError(
            f"evaluation_id {request.evaluation_id!r} must be a folder name: letters, "
            "digits, '.', '_' and '-'"
        )
    unknown = [m for m in request.metrics if m not in METRICS_BY_TASK[request.task]]
    if unknown:
        raise EvaluationError(
            f"unknown {request.task} metrics {unknown}; available: {', '.join(METRICS_BY_TASK[request.task])}"
        )


def _load_model(model_uri: str) -> tuple[Any, dict[str, Any]]:
    """Return the fitted Pipeline and the metadata of the model folder at ``model_uri``."""
    try:
        folder = path_from_uri(model_uri)
        metadata = json.loads((folder / "metadata.json").read_text())
        return joblib.load(folder / "model.joblib"), metadata
    except Exception as err:  # ValueError (URI), OSError, JSON and unpickling errors
        raise EvaluationError(
            f"cannot load the model at {model_uri} ({err}); expected a folder "
            "holding model.joblib and metadata.json"
        ) from err


def _load_test_split(request: EvaluationRequest) -> pd.DataFrame:
    uri = request.dataset.splits.get("test")
    if uri is None:
        raise EvaluationError(f"dataset {request.dataset.dataset_id} has no test split; prepare it again")
    try:
        frame = pd.read_parquet(path_from_uri(uri) / "data.parquet")
    except Exception as err:  # ValueError (URI), OSError, pyarrow errors
        raise EvaluationError(f"cannot read the test split {uri}/data.parquet ({err})") from err
    if frame.empty:
        raise EvaluationError(f"the test split of dataset {request.dataset.dataset_id} has no rows")
    return frame


def _score(model: Any, metadata: dict[str, Any], frame: pd.DataFrame, request: EvaluationRequest) -> Scored:
    """Predict on the test split's feature columns (the model's own feature_names)."""
    features = list(metadata.get("feature_names") or request.dataset.feature_names)
    target = metadata.get("target") or request.dataset.target
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise EvaluationError(
            f"the test split lacks columns {missing} that the model at "
            f"{request.model_uri} was trained on; was it trained on another dataset?"
        )
    x, y_true = frame[features], frame[target].to_numpy()
    classify = request.task == "classification"
    try:
        y_pred = np.asarray(model.predict(x))
        proba = model.predict_proba(x) if classify and hasattr(model, "predict_proba") else None
        if classify:  # predictions must be the integer class codes the dataset stores
            y_true, y_pred = y_true.astype(int), y_pred.astype(int)
    except Exception as err:  # any estimator error: shape, dtype, unseen category, label strings
        raise EvaluationError(
            f"the model at {request.model_uri} failed to predict class codes or "
            f"values on the test split ({type(err).__name__}: {err})"
        ) from err
    return Scored(y_true, y_pred, None if proba is None else np.asarray(proba, dtype=float))


def _metrics(scored: Scored, request: EvaluationRequest) -> dict[str, float]:
    try:
        if request.task == "classification":
            n_classes = len(request.dataset.class_labels or []) or int(scored.y_true.max()) + 1
            metrics = classification_metrics(scored.y_true, scored.y_pred, scored.y_proba, n_classes)
        else:
            metrics = regression_metrics(scored.y_true.astype(float), scored.y_pred.astype(float))
    except ValueError as err:  # e.g. predict_proba columns != the dataset's number of classes
        raise EvaluationError(
            f"cannot compute the {request.task} metrics of {request.model_uri} on "
            f"dataset {request.dataset.dataset_id}: {err}"
        ) from err
    absent = [m for m in request.metrics if m not in metrics]
    if absent:
        raise EvaluationError(
            f"cannot compute {absent} on the test split of {request.dataset.dataset_id}: "
            "roc_auc and log_loss need predict_proba and at least two classes in the "
            "test split; drop them from evaluation.metrics or add test rows"
        )
    return metrics


def _report_body(request: EvaluationRequest, metrics: dict[str, float], n_test: int) -> dict[str, Any]:
    return {
        "evaluation_id": request.evaluation_id,
        "task": request.task,
        "model_uri": request.model_uri,
        "dataset_id": request.dataset.dataset_id,
        "data_version": request.dataset.data_version,
        "split": "test",
        "n_test": n_test,
        "requested": request.metrics,
        "metrics": metrics,
    }


def _write_plots(task: str, scored: Scored, class_labels: list[str] | None, folder: Path) -> dict[str, Path]:
    """Draw the task's diagnostic plots as PNG files (matplotlib's Agg backend, ~100 dpi).

    Args:
        task: ``classification`` or ``regression``.
        scored: truth and predictions on the test split.
        class_labels: label of each class code 0..K-1 (classification), or None.
        folder: where the PNG files are written.

    Returns:
        Plot name (``confusion_matrix``, ``roc_curve``, ``residuals``,
        ``predicted_vs_actual``) -> PNG path. ``roc_curve`` is absent without probabilities.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window, whatever the environment says
    if task == "classification":
        labels = class_labels or [str(c) for c in range(int(scored.y_true.max()) + 1)]
        drawers = {"confusion_matrix": _confusion_matrix}
        if scored.y_proba is not None:
            drawers["roc_curve"] = _roc_curve
        figures = {name: draw(scored, labels) for name, draw in drawers.items()}
    else:
        figures = {"residuals": _residuals(scored), "predicted_vs_actual": _predicted_vs_actual(scored)}
    paths = {}
    for name, figure in figures.items():
        figure.tight_layout()
        paths[name] = folder / f"{name}.png"
        figure.savefig(paths[name], dpi=_DPI)
    return paths


def _figure(width: float = 6.4, height: float = 4.8):
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, nothing to close

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots()


def _confusion_matrix(scored: Scored, labels: list[str]):
    from sklearn.metrics import ConfusionMatrixDisplay

    size = min(4.8 + 0.4 * len(labels), 12)
    figure, ax = _figure(size + 1, size)
    ConfusionMatrixDisplay.from_predictions(
        scored.y_true,
        scored.y_pred,
        labels=list(range(len(labels))),
        display_labels=labels,
        ax=ax,
        cmap="Blues",
        colorbar=True,
        xticks_rotation=45 if len(labels) > 4 else "horizontal",
    )
    ax.set_title(f"Confusion matrix (test split, n={len(scored.y_true)})")
    return figure


def _roc_curve(scored: Scored, labels: list[str]):
    from sklearn.metrics import RocCurveDisplay

    figure, ax = _figure()
    assert scored.y_proba is not None  # only drawn with probabilities
    if len(labels) == 2:
        RocCurveDisplay.from_predictions(
            scored.y_true, scored.y_proba[:, 1], ax=ax, name=f"{labels[1]} vs {labels[0]}"
        )
    else:  # one-vs-rest: one curve per class present in the test split
        for code, label in enumerate(labels):
            positives = scored.y_true == code
            if 0 < positives.sum() < len(positives):
                RocCurveDisplay.from_predictions(
                    positives, scored.y_proba[:, code], ax=ax, name=f"{label} vs rest"
                )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curve (test split)" + (", one-vs-rest" if len(labels) > 2 else ""),
    )
    ax.legend(loc="lower right", fontsize="small")
    return figure


def _residuals(scored: Scored):
    figure, ax = _figure()
    residuals = scored.y_true - scored.y_pred
    ax.scatter(scored.y_pred, residuals, s=14, alpha=0.6, edgecolors="none")
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set(
        xlabel="Predicted value",
        ylabel="Residual (actual - predicted)",
        title=f"Residuals vs predicted (test split, n={len(residuals)})",
    )
    return figure


def _predicted_vs_actual(scored: Scored):
    figure, ax = _figure(5.6, 5.6)
    ax.scatter(scored.y_true, scored.y_pred, s=14, alpha=0.6, edgecolors="none")
    low = float(min(scored.y_true.min(), scored.y_pred.min()))
    high = float(max(scored.y_true.max(), scored.y_pred.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect prediction")
    ax.set(xlabel="Actual value", ylabel="Predicted value", title="Predicted vs actual (test split)")
    ax.legend(loc="upper left", fontsize="small")
    return figure
