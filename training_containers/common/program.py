"""What every training program shares: read the channels, resolve hyperparameters, score, describe.

A program (``training_containers/<family>/train.py``) builds and fits its estimator; this module
reads the job's data and configuration under the training contract, prints the ``train_*`` and
``validation_*`` metric lines, and builds the model's ``metadata.json``.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from training_containers.common.contract import JobConfig, TrainingContract, write_metric_lines
from training_containers.common.metrics import (
    classification_metrics,
    format_metric_lines,
    regression_metrics,
)
from training_containers.common.preprocessing import infer_feature_types, split_features


@dataclass(frozen=True)
class Dataset:
    """The job's description and its train/validation splits.

    Attributes:
        config: the reserved hyperparameters and the estimator's ones.
        feature_types: column -> ``numeric`` | ``categorical`` (given, or inferred from dtypes).
        X_train / y_train: training features (n, n_columns) and target (n,).
        X_validation / y_validation: the same for the validation channel, or None.
        n_classes: number of classes K (codes 0..K-1) for classification, else None.
    """

    config: JobConfig
    feature_types: dict[str, str]
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_validation: pd.DataFrame | None
    y_validation: np.ndarray | None
    n_classes: int | None


def load_dataset(contract: TrainingContract) -> Dataset:
    """Read the hyperparameters and channels of the job.

    Raises:
        ValueError: reserved keys missing, the target or a feature column missing, or
            classification targets that are not integer codes 0..K-1 with K >= 2.
        FileNotFoundError: the train channel is absent.
    """
    config = JobConfig.from_hyperparameters(contract.read_hyperparameters())
    train = contract.read_channel("train")
    validation = contract.read_channel("validation", required=False)
    feature_types = config.feature_types or infer_feature_types(
        train.drop(columns=[config.target], errors="ignore")
    )
    X_train, y_train = split_features(train, config.target, feature_types, "train")
    X_val, y_val = (None, None)
    if validation is not None:
        X_val, y_val = split_features(validation, config.target, feature_types, "validation")
    n_classes = None
    if config.task == "classification":
        y_train, y_val = _class_codes(y_train), None if y_val is None else _class_codes(y_val)
        n_classes = int(max(y_train.max(), -1 if y_val is None else y_val.max())) + 1
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, the target has {n_classes}")
    else:
        y_train = y_train.astype(float)
        y_val = None if y_val is None else y_val.astype(float)
    return Dataset(config, feature_types, X_train, y_train, X_val, y_val, n_classes)


def resolve_hyperparameters(
    algorithm: str, values: dict[str, Any], defaults: dict[str, Any]
) -> dict[str, Any]:
    """Merge the given hyperparameters over the algorithm's defaults.

    Raises:
        ValueError: a name the algorithm does not have.
    """
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ValueError(f"unknown hyperparameters for {algorithm}: {unknown}; allowed: {sorted(defaults)}")
    return {**defaults, **values}


def score(model: Any, X: pd.DataFrame, y: np.ndarray, task: str, n_classes: int | None) -> dict[str, float]:
    """Return the task's metrics of ``model`` on ``(X, y)`` (see ``common.metrics``)."""
    predictions = model.predict(X)
    if task == "regression":
        return regression_metrics(y, predictions)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    return classification_metrics(y, np.asarray(predictions).astype(int), proba, int(n_classes or 2))


def report_metrics(model: Any, data: Dataset) -> dict[str, dict[str, float]]:
    """Print ``train_*`` and ``validation_*`` metric lines to stdout and return them by split."""
    splits = {"train": (data.X_train, data.y_train)}
    if data.X_validation is not None:
        splits["validation"] = (data.X_validation, data.y_validation)
    results = {}
    for split, (X, y) in splits.items():
        results[split] = score(model, X, y, data.config.task, data.n_classes)
        write_metric_lines(format_metric_lines(split, results[split]))
    return results


def build_metadata(data: Dataset, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Describe the model for ``metadata.json``: schema, task, versions, hyperparameters used."""
    return {
        "algorithm": data.config.algorithm,
        "task": data.config.task,
        "target": data.config.target,
        "feature_names": list(data.feature_types),
        "feature_types": data.feature_types,
        "n_classes": data.n_classes,
        "n_train": len(data.y_train),
        "n_validation": 0 if data.y_validation is None else len(data.y_validation),
        "hyperparameters": params,
        "preprocessing": data.config.preprocessing,
        "seed": data.config.seed,
        "library_versions": library_versions(),
        **extra,
    }


def library_versions() -> dict[str, str]:
    """Return the versions a saved model depends on: python, numpy, pandas, scikit-learn, joblib.

    XGBoost is added when the program imported it.
    """
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }
    if "xgboost" in sys.modules:
        versions["xgboost"] = sys.modules["xgboost"].__version__
    return versions


def _class_codes(y: np.ndarray) -> np.ndarray:
    numeric = pd.to_numeric(pd.Series(y), errors="coerce")
    if numeric.isna().any() or (numeric % 1 != 0).any() or (numeric < 0).any():
        raise ValueError(
            "classification targets must be integer class codes 0..K-1 (data preparation encodes "
            f"labels); got values like {list(pd.unique(y))[:5]}"
        )
    return numeric.to_numpy().astype(int)
