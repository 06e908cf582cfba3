"""Learning curves, computed cheaply for each estimator family we train.

- XGBoost: the metric after each boosting round on the train and validation splits, from
  ``predict(..., iteration_range=(0, k))`` on the fitted booster (no refit).
- Random forests: the metric of the average of the first ``k`` trees' predictions, as the
  forest itself averages them (``RandomForest*.predict_proba`` is the mean of its trees'), no refit.
- Linear and logistic regression: ``sklearn.model_selection.learning_curve`` over 5 training
  sizes (20 % to 100 % of the training split), refitting a clone of the whole Pipeline; scored
  on the validation split when there is one, else by 5-fold cross-validation.
- Neural networks (skorch, possibly the last step of a nested Pipeline): the losses skorch
  recorded per epoch in ``net.history`` (no refit). ``train_loss`` is the epoch's mean over its
  batches in training mode (dropout on, weights moving); ``valid_loss`` is measured after the
  epoch. Classification losses are cross-entropy, i.e. ``log_loss``; regression losses are MSE,
  drawn as its square root (``rmse``).

The curve's metric is the task's loss: ``log_loss`` (nats) for classification with
probabilities, ``accuracy`` without them, ``rmse`` for regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from training_containers.evaluation.scoring import Model, Split

#: Most points drawn per curve (boosting rounds or tree counts are sampled evenly).
MAX_POINTS = 20  # points of a curve: enough to see its shape, cheap to score
#: Training sizes of the refitting curve, as fractions of the training split.
TRAIN_SIZES = np.linspace(0.2, 1.0, 5)


@dataclass(frozen=True)
class Curve:
    """A learning curve ready to draw.

    Attributes:
        metric: the metric on the y axis (``log_loss``, ``accuracy`` or ``rmse``).
        x_label: what the x axis counts.
        x: the x values, shape (m,).
        series: line label -> metric values, shape (m,) each (NaN where not computable).
        title: the plot's title.
        best: the booster's best iteration (early stopping), or None.
    """

    metric: str
    x_label: str
    x: np.ndarray
    series: dict[str, np.ndarray]
    title: str
    best: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The curve as JSON-ready values (None where a point could not be computed)."""
        return {
            "metric": self.metric,
            "x_label": self.x_label,
            "x": [int(v) for v in self.x],
            "series": {
                name: [None if math.isnan(v) else float(v) for v in values]
                for name, values in self.series.items()
            },
            "best_iteration": self.best,
        }


def learning_curve(
    model: Model, splits: dict[str, Split], task: str, n_classes: int | None, seed: int
) -> Curve | None:
    """Return the learning curve of the model's estimator family, or None for another family.

    Args:
        model: the trained model.
        splits: ``train`` (required) and ``validation`` (optional), already scored.
        task: ``classification`` or ``regression``.
        n_classes: K for classification.
        seed: shuffles the refitting curve's training subsets.

    Raises:
        ValueError: the estimator refuses the rows (propagated from predict or fit).
    """
    estimator = model.estimator
    module = type(estimator).__module__
    labelled = {k: v for k, v in splits.items() if k in ("train", "validation")}
    if module.startswith("xgboost"):
        return _boosting_curve(model, labelled, task, n_classes)
    if module.startswith("sklearn.ensemble") and hasattr(estimator, "estimators_"):
        return _forest_curve(model, labelled, task, n_classes)
    if module.startswith("sklearn.linear_model"):
        return _refit_curve(model, labelled, task, seed)
    while hasattr(estimator, "steps"):  # the neural network sits behind a float32 cast
        estimator = estimator.steps[-1][1]
    if type(estimator).__module__.startswith("skorch") and len(getattr(estimator, "history", [])):
        return _epoch_curve(estimator.history, task)
    return None


def curve_metric(task: str, has_proba: bool) -> str:
    """The metric a curve plots: log_loss, accuracy (no probabilities) or rmse."""
    if task == "regression":
        return "rmse"
    return "log_loss" if has_proba else "accuracy"


def metric_value(metric: str, y: np.ndarray, output: np.ndarray, n_classes: int | None) -> float:
    """Score ``output`` (probabilities (n, K) for log_loss and accuracy, values (n,) for rmse)."""
    if metric == "rmse":
        return math.sqrt(skm.mean_squared_error(y, output))
    if metric == "accuracy":
        return skm.accuracy_score(y, output.argmax(axis=1) if output.ndim == 2 else output)
    proba = np.clip(output, 1e-15, None)
    return skm.log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=list(range(n_classes or 2)))


def _grid(total: int) -> np.ndarray:
    """Up to ``MAX_POINTS`` counts from 1 to ``total``, evenly spread, both ends included."""
    return np.unique(np.linspace(1, total, min(total, MAX_POINTS)).round().astype(int))


def _boosting_curve(model: Model, splits: dict[str, Split], task: str, n_classes: int | None) -> Curve:
    booster = model.estimator
    rounds = _grid(booster.get_booster().num_boosted_rounds())
    metric = curve_metric(task, task == "classification")
    series = {}
    for name, split in splits.items():
        values = []
        for k in rounds:
            if task == "classification":
                output = booster.predict_proba(split.Xt, iteration_range=(0, int(k)))
            else:
                output = booster.predict(split.Xt, iteration_range=(0, int(k)))
            values.append(metric_value(metric, split.y, np.asarray(output, dtype=float), n_classes))
        series[name] = np.asarray(values)
    best = getattr(booster, "best_iteration", None)
    return Curve(metric, "boosting rounds", rounds, series, f"XGBoost {metric} per boosting round", best)


def _forest_curve(model: Model, splits: dict[str, Split], task: str, n_classes: int | None) -> Curve:
    forest = model.estimator
    trees = forest.estimators_
    counts = _grid(len(trees))
    classify = task == "classification"
    metric = curve_metric(task, classify)
    series = {}
    for name, split in splits.items():
        X = np.ascontiguousarray(split.Xt, dtype=np.float32)  # what the trees were fitted on
        running = np.zeros((len(X), n_classes or 2) if classify else len(X))
        values = []
        for index, tree in enumerate(trees, start=1):
            if classify:  # each tree's columns are forest.classes_; place them at their codes
                running[:, forest.classes_.astype(int)] += tree.predict_proba(X, check_input=False)
            else:
                running += tree.predict(X, check_input=False)
            if index in counts:
                values.append(metric_value(metric, split.y, running / index, n_classes))
        series[name] = np.asarray(values)
    return Curve(metric, "number of trees", counts, series, f"Random forest {metric} vs number of trees")


def _refit_curve(model: Model, splits: dict[str, Split], task: str, seed: int) -> Curve:
    from sklearn.base import clone
    from sklearn.model_selection import KFold
    from sklearn.model_selection import learning_curve as sklearn_curve

    train, validation = splits["train"], splits.get("validation")
    metric = curve_metric(task, hasattr(model.estimator, "predict_proba"))
    scoring = {"rmse": "neg_root_mean_squared_error", "log_loss": "neg_log_loss", "accuracy": "accuracy"}
    if validation is not None:
        X = pd.concat([train.X, validation.X], ignore_index=True)
        y = np.concatenate([train.y, validation.y])
        cv = [(np.arange(len(train.y)), np.arange(len(train.y), len(y)))]
        held_out = "validation"
    else:
        X, y, cv = train.X, train.y, KFold(5, shuffle=True, random_state=seed)
        held_out = "cross-validation (5 folds)"
    sizes, train_scores, test_scores = sklearn_curve(
        clone(model.pipeline),
        X,
        y,
        train_sizes=TRAIN_SIZES,
        cv=cv,
        scoring=scoring[metric],
        shuffle=True,
        random_state=seed,
    )
    sign = 1.0 if metric == "accuracy" else -1.0  # sklearn's scorers negate losses
    series = {"train": sign * train_scores.mean(axis=1), held_out: sign * test_scores.mean(axis=1)}
    title = f"{type(model.estimator).__name__} {metric} vs training rows (refitted)"
    return Curve(metric, "training rows", sizes, series, title)


def _epoch_curve(history: Any, task: str) -> Curve:
    """The per-epoch ``train_loss`` / ``valid_loss`` of a skorch ``History`` (see the module doc)."""
    metric = "rmse" if task == "regression" else "log_loss"
    epochs = np.arange(1, len(history) + 1)
    series = {}
    for name, key in (("train", "train_loss"), ("validation", "valid_loss")):
        values = np.asarray([row.get(key, math.nan) for row in history], dtype=float)
        if not np.isnan(values).all():
            series[name] = np.sqrt(values) if metric == "rmse" else values
    valid = series.get("validation")
    best = int(np.nanargmin(valid)) if valid is not None else None  # 0-based, as best_iteration
    return Curve(metric, "epochs", epochs, series, f"Neural network {metric} per epoch", best)
