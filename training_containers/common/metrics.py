"""Task metrics, shared by the training programs (train/validation) and the evaluation (test).

Pure functions over arrays, scikit-learn's metric implementations underneath. Conventions:
binary classification scores the positive class (code 1); multiclass precision, recall and F1
are macro averages and ROC AUC is one-vs-rest (scikit-learn ``roc_auc_score(multi_class="ovr")``).
``mape`` is a fraction (0.05 is 5 %), as scikit-learn returns it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, y_proba: np.ndarray | None, n_classes: int
) -> dict[str, float]:
    """Compute accuracy, precision, recall, f1, roc_auc and log_loss.

    Args:
        y_true: integer class codes, shape (n,).
        y_pred: predicted class codes, shape (n,).
        y_proba: class probabilities, shape (n, n_classes), or None (then roc_auc and log_loss
            are left out).
        n_classes: number of classes K (codes are 0..K-1).

    Returns:
        metric name -> value (fractions in [0, 1], log_loss in nats).
    """
    average = "binary" if n_classes == 2 else "macro"
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, average=average, zero_division=0),
        "recall": skm.recall_score(y_true, y_pred, average=average, zero_division=0),
        "f1": skm.f1_score(y_true, y_pred, average=average, zero_division=0),
    }
    if y_proba is not None and len(np.unique(y_true)) > 1:
        labels = list(range(n_classes))
        # float32 probabilities (XGBoost) sum to 1 only within rounding; log_loss checks the sum.
        y_proba = np.asarray(y_proba, dtype=np.float64)
        y_proba = y_proba / y_proba.sum(axis=1, keepdims=True)
        if n_classes == 2:
            out["roc_auc"] = skm.roc_auc_score(y_true, y_proba[:, 1])
        else:
            out["roc_auc"] = skm.roc_auc_score(y_true, y_proba, multi_class="ovr", labels=labels)
        out["log_loss"] = skm.log_loss(y_true, y_proba, labels=labels)
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Compute rmse, mae, r2 and mape (a fraction) of a regression.

    Args:
        y_true: targets, shape (n,).
        y_pred: predictions, shape (n,).

    Returns:
        metric name -> value, in the target's units (r2 and mape unitless).
    """
    return {
        "rmse": float(math.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
        "mape": float(skm.mean_absolute_percentage_error(y_true, y_pred)),
    }


def format_metric_lines(
    prefix: str, values: dict[str, float], keep: Sequence[str] | None = None
) -> list[str]:
    """Render metrics as ``{prefix}_{name}={value}`` lines.

    That is the form SageMaker metric definitions capture with the regex
    ``{prefix}_{name}=([-+0-9.eE]+)``.

    Args:
        prefix: the split, e.g. ``train`` or ``validation``.
        values: metric name -> value.
        keep: only these names, when given.

    Returns:
        One line per metric, without trailing newlines.
    """
    return [f"{prefix}_{k}={v:.6g}" for k, v in values.items() if keep is None or k in keep]
