"""Load the trained model and score each split: predictions, probabilities and the task's metrics.

The model folder holds ``model.joblib`` (a scikit-learn ``Pipeline`` whose last step is the
estimator and whose earlier steps preprocess the raw feature columns) and ``metadata.json``.
Each split is transformed once through the preprocessing steps; the estimator then predicts on
the transformed matrix, exactly as ``Pipeline.predict`` does, and the same matrix serves the
learning curve and SHAP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from training_containers.common.metrics import classification_metrics, regression_metrics
from training_containers.evaluation.processing import EvaluationConfig


@dataclass(frozen=True)
class Model:
    """A trained model, split into its preprocessing and its estimator.

    Attributes:
        pipeline: the saved object (a Pipeline, or a bare estimator).
        preprocessor: every step but the last (None when there is none).
        estimator: the last step.
        features: the raw feature columns, in the order the model was trained on.
        feature_types: column -> ``numeric`` | ``categorical``.
        target: the target column.
        metadata: the content of metadata.json.
    """

    pipeline: Any
    preprocessor: Any
    estimator: Any
    features: list[str]
    feature_types: dict[str, str]
    target: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Split:
    """One split's rows and what the model made of them.

    Attributes:
        name: ``train``, ``validation`` or ``test``.
        frame: the split's rows, every column (the sensitive feature may not be a model input).
        X: the feature columns, shape (n, n_features).
        Xt: the preprocessed features, shape (n, n_transformed), dense floats.
        y: the target, shape (n,): class codes (int) or values (float).
        y_pred: predictions, shape (n,).
        y_proba: class probabilities, shape (n, K), or None (regression, or no predict_proba).
    """

    name: str
    frame: pd.DataFrame
    X: pd.DataFrame
    Xt: np.ndarray
    y: np.ndarray
    y_pred: np.ndarray
    y_proba: np.ndarray | None


def load_model(model_dir: Path, config: EvaluationConfig) -> Model:
    """Load ``model.joblib`` and ``metadata.json`` from ``model_dir``.

    Raises:
        FileNotFoundError: either file is missing.
        ValueError: no target or no feature names in the config or the metadata.
    """
    metadata, pipeline, preprocessor, estimator = read_model_folder(model_dir)
    features = list(metadata.get("feature_names") or [])
    target = config.target or metadata.get("target")
    if not features or not target:
        raise ValueError("metadata.json must name the model's feature_names and target")
    types = dict(metadata.get("feature_types") or {})
    return Model(pipeline, preprocessor, estimator, features, types, str(target), metadata)


def read_model_folder(model_dir: Path) -> tuple[dict[str, Any], Any, Any, Any]:
    """Read a model folder: its metadata, the saved pipeline, its preprocessing and estimator.

    Returns:
        ``(metadata, pipeline, preprocessor, estimator)``: the preprocessor is every step but
        the last (None when there is none), the estimator the last step (or the bare object).

    Raises:
        FileNotFoundError: ``model.joblib`` or ``metadata.json`` is missing.
    """
    for name in ("model.joblib", "metadata.json"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(
                f"cannot load the model: {model_dir / name} does not exist; mount the training "
                "job's model folder (model.joblib and metadata.json) as input/model/"
            )
    metadata = json.loads((model_dir / "metadata.json").read_text())
    pipeline = joblib.load(model_dir / "model.joblib")
    steps = getattr(pipeline, "steps", None)
    preprocessor = pipeline[:-1] if steps and len(steps) > 1 else None
    estimator = steps[-1][1] if steps else pipeline
    return metadata, pipeline, preprocessor, estimator


def count_classes(config: EvaluationConfig, model: Model, frames: list[pd.DataFrame]) -> int | None:
    """Return K, the number of classes (codes 0..K-1), or None for regression.

    From the config's class labels, else the metadata's ``n_classes``, else the largest code seen.
    """
    if config.task != "classification":
        return None
    if config.class_labels:
        return len(config.class_labels)
    if model.metadata.get("n_classes"):
        return int(model.metadata["n_classes"])
    return max((int(f[model.target].max()) for f in frames if model.target in f.columns), default=1) + 1


def score_split(model: Model, frame: pd.DataFrame, name: str, task: str) -> Split:
    """Transform the split through the preprocessing steps and predict with the estimator.

    Raises:
        ValueError: the split lacks a feature or the target column, the target has missing
            values, or the estimator fails on the rows.
    """
    missing = [c for c in [*model.features, model.target] if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the {name} split lacks columns {missing} that the model was trained on; its "
            f"columns are {list(frame.columns)[:30]}"
        )
    X, y = frame[model.features], frame[model.target]
    if y.isna().any():
        raise ValueError(f"the target {model.target!r} has {int(y.isna().sum())} missing values in {name}")
    try:
        transformed, y_pred, proba = _predict(model, X, task)
        if task == "classification":  # predictions must be the integer codes the splits store
            y, y_pred = y.to_numpy().astype(int), y_pred.astype(int)
        else:
            y, y_pred = y.to_numpy().astype(float), y_pred.astype(float)
    except (ValueError, TypeError) as err:  # shape, dtype, unseen category, label strings
        raise ValueError(
            f"the model failed to predict class codes or values on the {name} split "
            f"({type(err).__name__}: {err})"
        ) from err
    return Split(name, frame, X, _dense(transformed), y, y_pred, proba)


def _predict(model: Model, X: pd.DataFrame, task: str) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """Predict as ``Pipeline.predict`` does: the estimator on the preprocessed rows.

    Returns:
        The preprocessed rows, the predictions (n,) and the probabilities (n, K) or None.
    """
    transformed = model.preprocessor.transform(X) if model.preprocessor is not None else X
    y_pred = np.asarray(model.estimator.predict(transformed))
    proba = None
    if task == "classification" and hasattr(model.estimator, "predict_proba"):
        proba = np.asarray(model.estimator.predict_proba(transformed), dtype=float)
    return transformed, y_pred, proba


def split_metrics(split: Split, task: str, n_classes: int | None) -> dict[str, float]:
    """Return the task's metrics on one split (``common.metrics``).

    Raises:
        ValueError: probabilities whose columns do not match the number of classes.
    """
    if task == "classification":
        return classification_metrics(split.y, split.y_pred, split.y_proba, int(n_classes or 2))
    return regression_metrics(split.y, split.y_pred)


def check_requested(requested: list[str], test_metrics: dict[str, float]) -> None:
    """Fail when a requested metric could not be computed on the test split.

    Raises:
        ValueError: naming the absent metrics (roc_auc and log_loss need predict_proba and at
            least two classes in the test split).
    """
    absent = [m for m in requested if m not in test_metrics]
    if absent:
        raise ValueError(
            f"cannot compute {absent} on the test split: roc_auc and log_loss need predict_proba "
            "and at least two classes in the test split; drop them from evaluation.metrics or "
            "add test rows"
        )


def gaps(train: dict[str, float], test: dict[str, float]) -> dict[str, float]:
    """Return metric -> train value minus test value, for the metrics both splits have."""
    return {name: float(train[name] - test[name]) for name in test if name in train}


def class_counts(y_train: np.ndarray, labels: list[str] | None, n_classes: int) -> dict[str, int]:
    """Return class label -> training rows of that class (every class, zeros included)."""
    names = labels or [str(code) for code in range(n_classes)]
    counts = np.bincount(y_train, minlength=n_classes)
    return {names[code]: int(counts[code]) for code in range(n_classes)}


def _dense(matrix: Any) -> np.ndarray:
    if hasattr(matrix, "toarray"):  # a scipy sparse matrix from a one-hot encoder
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=float)
