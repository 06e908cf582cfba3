"""Group fairness on a sensitive feature with fairlearn's ``MetricFrame`` (imported only when asked for).

The test split's rows are grouped by the raw ``sensitive_feature`` column (missing values form
the group ``"missing"``). Per group: ``count`` and accuracy, precision, recall, f1 and
selection_rate (classification) or mae and rmse (regression). Binary classification scores the
positive class (code 1) as ``common.metrics`` does; multiclass precision, recall and F1 are
macro averages.

The compared metric is ``fairness.metric``, by default ``selection_rate`` (demographic parity)
for binary classification and ``mae`` for regression. Selection rate (the share of rows
predicted positive) has no single positive class in a multiclass problem, so multiclass models
compare ``accuracy`` instead, whether ``selection_rate`` was asked for or defaulted.
``difference`` is ``MetricFrame.difference()`` (largest minus smallest group value,
``method="between_groups"``), ``ratio`` is ``MetricFrame.ratio()`` (smallest over largest); the
check passes when ``difference <= max_difference``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import pandas as pd
from sklearn import metrics as skm

from training_containers.evaluation.processing import FairnessConfig
from training_containers.evaluation.scoring import Split

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "selection_rate")
REGRESSION_METRICS = ("mae", "rmse")
MISSING_GROUP = "missing"


def check_column(config: FairnessConfig, frame: pd.DataFrame) -> None:
    """Fail early when the sensitive feature is not a column of the test split.

    Raises:
        ValueError: naming the column and the available ones.
    """
    if config.sensitive_feature not in frame.columns:
        raise ValueError(
            f"fairness.sensitive_feature {config.sensitive_feature!r} is not a column of the test "
            f"split; available columns: {', '.join(map(str, frame.columns))}"
        )


def compared_metric(config: FairnessConfig, task: str, n_classes: int | None) -> str:
    """The metric compared across groups (see the module docstring for the defaults).

    Raises:
        ValueError: a metric of the other task family.
    """
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    metric = config.metric or ("selection_rate" if task == "classification" else "mae")
    if metric not in allowed:
        raise ValueError(
            f"fairness.metric {metric!r} does not apply to {task}; use one of {', '.join(allowed)}"
        )
    if metric == "selection_rate" and (n_classes or 2) > 2:
        return "accuracy"
    return metric


def fairness_report(config: FairnessConfig, test: Split, task: str, n_classes: int | None) -> dict[str, Any]:
    """Compute by-group metrics and the between-group difference and ratio of the compared one.

    Args:
        config: sensitive feature, max_difference and the metric.
        test: the scored test split (``frame`` holds the sensitive column).
        task: ``classification`` or ``regression``.
        n_classes: K for classification.

    Returns:
        The ``FairnessReport`` fields: sensitive_feature, metric, by_group (group -> metric ->
        value), difference, ratio, max_difference, passed.

    Raises:
        ValueError: the column is missing, or the metric does not apply to the task.
    """
    from fairlearn.metrics import MetricFrame

    check_column(config, test.frame)
    metric = compared_metric(config, task, n_classes)
    groups = test.frame[config.sensitive_feature].map(lambda v: MISSING_GROUP if pd.isna(v) else str(v))
    frame = MetricFrame(
        metrics=group_metrics(task, n_classes),
        y_true=test.y,
        y_pred=test.y_pred,
        sensitive_features=groups.to_numpy(),
    )
    difference = float(frame.difference(method="between_groups")[metric])
    ratio = float(frame.ratio(method="between_groups")[metric])
    if math.isnan(ratio):  # every group at 0: the groups are equal
        ratio = 1.0 if difference == 0 else 0.0
    by_group = {
        str(group): {name: float(value) for name, value in row.items()}
        for group, row in frame.by_group.iterrows()
    }
    return {
        "sensitive_feature": config.sensitive_feature,
        "metric": metric,
        "by_group": by_group,
        "difference": difference,
        "ratio": ratio,
        "max_difference": float(config.max_difference),
        "passed": bool(difference <= config.max_difference),
    }


def group_metrics(task: str, n_classes: int | None) -> dict[str, Any]:
    """The metric functions ``MetricFrame`` evaluates per group, by name (plus ``count``)."""
    from fairlearn.metrics import count, selection_rate

    if task == "regression":
        return {
            "count": count,
            "mae": skm.mean_absolute_error,
            "rmse": lambda y, p: math.sqrt(skm.mean_squared_error(y, p)),
        }
    average = "binary" if (n_classes or 2) == 2 else "macro"
    metrics: dict[str, Any] = {
        "count": count,
        "accuracy": skm.accuracy_score,
        "precision": partial(skm.precision_score, average=average, zero_division=0),
        "recall": partial(skm.recall_score, average=average, zero_division=0),
        "f1": partial(skm.f1_score, average=average, zero_division=0),
    }
    if average == "binary":
        metrics["selection_rate"] = partial(selection_rate, pos_label=1)
    return metrics
