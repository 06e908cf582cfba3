"""Why a model missed its thresholds, and what to change: the judge's suggestions. Pure.

Each suggestion is derived from the evaluation report only and carries the figure that triggered
it. The judge asks for suggestions on a miss only, and over- and underfitting are diagnosed on
the thresholded metrics that failed. The thresholds below are heuristics (rules of thumb), not
statistical tests:

* **Overfitting** (``OVERFIT_GAP``, ``OVERFIT_ERROR_RATIO``): for a fraction metric (accuracy,
  precision, recall, f1, roc_auc, r2) a train-minus-test gap above 0.05. On a test split of a
  few hundred rows the standard error of a fraction near 0.9 is about 0.02 (``sqrt(p(1-p)/n)``,
  p = 0.9, n = 200), so a gap above 0.05 is more than twice the sampling noise. For an error
  metric (``catalog.LOWER_IS_BETTER``) a test error above 1.25 × the train error.
* **Underfitting**: the metric on the training split itself misses the threshold; more
  capacity is needed before regularising helps. It takes precedence over overfitting.
* **Class imbalance** (``IMBALANCE_RATIO``): smallest over largest training class count below
  0.5, i.e. the majority class has more than twice the rows of the minority class.
* **Fairness**: the fairness report failed its ``max_difference``; no automatic patch.
* **Clustering, dimensionality reduction, control**: one suggestion per family from
  ``core.judge.family_suggestions`` (cluster structure, kept variance, training budget).

Patches are concrete hyperparameter changes for the run's algorithm, computed by
``core.judge.remedies`` from its current hyperparameters and kept within the ranges declared in
``core.spec.hyperparameters``.
"""

from __future__ import annotations

import math
from typing import Any

from mcp_server.core.judge.family_suggestions import family_suggestion
from mcp_server.core.judge.remedies import (
    Hyperparameters,
    class_weights,
    current_hyperparameters,
    grow,
    regularise,
)
from mcp_server.core.judge.suggestion import Suggestion, fmt, train_value
from mcp_server.core.models import EvaluationReport, FairnessReport
from mcp_server.core.spec.catalog import LOWER_IS_BETTER

#: Train-minus-test gap above which a fraction metric is called overfitted (heuristic).
OVERFIT_GAP = 0.05
#: Test error over train error above which an error metric is called overfitted (heuristic).
OVERFIT_ERROR_RATIO = 1.25
#: Smallest over largest class count below which the classes are called imbalanced (heuristic).
IMBALANCE_RATIO = 0.5
#: Metrics bounded by 1 on which an absolute gap is meaningful.
FRACTION_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})

#: Tasks whose suggestion comes from ``core.judge.family_suggestions``.
FAMILY_TASKS = ("clustering", "dimensionality_reduction", "control")


def suggest(
    failed: list[str],
    thresholds: dict[str, float],
    report: EvaluationReport | None,
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    task: str | None = None,
) -> list[Suggestion]:
    """Diagnose a miss from the evaluation report.

    Args:
        failed: the thresholded metrics whose check failed with a measured value, in order.
        thresholds: metric name -> threshold (floor, or ceiling for error metrics).
        report: the evaluation report (``None``: nothing to diagnose).
        algorithm: the spec's algorithm; patches are only computed for the algorithms of
            ``HYPERPARAMETER_MODELS``.
        hyperparameters: the spec's hyperparameters (missing ones take the library default).
        task: the spec's task; class weights are suggested for classification only.

    Returns:
        At most one suggestion per kind, in the order underfitting or overfitting, imbalance,
        fairness; ``[]`` when nothing triggers.
    """
    if report is None:
        return []
    current = current_hyperparameters(algorithm, hyperparameters)
    if task in FAMILY_TASKS:
        found_one = family_suggestion(task, failed, thresholds, report, algorithm, current)
        return [found_one] if found_one is not None else []
    found = [_fit_suggestion(failed, thresholds, report, algorithm, current)]
    if task in (None, "classification") and report.class_counts:
        found.append(_imbalance(report.class_counts, algorithm, current))
    if report.fairness is not None and not report.fairness.passed:
        found.append(_fairness(report, report.fairness))
    return [s for s in found if s is not None]


def suggested_patch(suggestions: list[Suggestion]) -> dict[str, Any]:
    """Combine the suggestions' patches into one spec merge patch.

    Returns:
        ``{"hyperparameters": {name: value, ...}}`` plus any section patches (a later suggestion
        wins on the same name), or ``{}`` when no suggestion has a patch.
    """
    changes: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    for suggestion in suggestions:
        changes.update(suggestion.patch)
        for section, values in suggestion.section_patch.items():
            sections.setdefault(section, {}).update(values)
    return ({"hyperparameters": changes} if changes else {}) | sections


# ---------------------------------------------------------------------------------------------
# Over- and underfitting
# ---------------------------------------------------------------------------------------------


def _fit_suggestion(
    failed: list[str],
    thresholds: dict[str, float],
    report: EvaluationReport,
    algorithm: str | None,
    current: Hyperparameters,
) -> Suggestion | None:
    measured = [(m, report.metrics[m], train_value(report, m)) for m in failed if m in report.metrics]
    pairs = [(m, test, train) for m, test, train in measured if train is not None and not math.isnan(train)]
    for metric, test, train in pairs:
        if _misses(metric, train, thresholds[metric]):
            return _underfitting(metric, train, test, thresholds[metric], algorithm, current)
    for metric, test, train in pairs:
        figure = _overfit_figure(metric, train, test)
        if figure is not None:
            return _overfitting(metric, train - test, figure, algorithm, current)
    return None


def _misses(metric: str, value: float, threshold: float) -> bool:
    return value > threshold if metric in LOWER_IS_BETTER else value < threshold


def _overfit_figure(metric: str, train: float, test: float) -> str | None:
    both = f"train {metric} {fmt(train)} vs test {metric} {fmt(test)}"
    if metric in LOWER_IS_BETTER:
        if train > 0 and test > OVERFIT_ERROR_RATIO * train:
            return f"{both}: test is {test / train:.2f} × train (> {OVERFIT_ERROR_RATIO:g} ×)"
    elif metric in FRACTION_METRICS and train - test > OVERFIT_GAP:
        return f"{both}: gap {fmt(train - test)} (> {OVERFIT_GAP:g})"
    return None


def _overfitting(
    metric: str, gap: float, figure: str, algorithm: str | None, current: Hyperparameters
) -> Suggestion:
    patch = regularise(algorithm, current)
    message = "The model does much better on its training data than on unseen data (overfitting): " + _action(
        "regularise", algorithm, current, patch
    )
    return Suggestion(
        kind="overfitting", message=message, figure=figure, metric=metric, value=gap, patch=patch
    )


def _underfitting(
    metric: str,
    train: float,
    test: float,
    threshold: float,
    algorithm: str | None,
    current: Hyperparameters,
) -> Suggestion:
    patch = grow(algorithm, current)
    sign = ">" if metric in LOWER_IS_BETTER else "<"
    figure = f"train {metric} {fmt(train)} {sign} threshold {threshold:g} (test {fmt(test)})"
    message = "The model misses the threshold on its own training data (underfitting): " + _action(
        "give more capacity to", algorithm, current, patch
    )
    if algorithm == "linear_regression" and not patch:
        message += (
            "; ordinary least squares has no regularisation left to lower, so a linear model may be "
            "too simple for this data: try `algorithm: random_forest` or `xgboost`"
        )
    return Suggestion(
        kind="underfitting", message=message, figure=figure, metric=metric, value=train, patch=patch
    )


def _action(verb: str, algorithm: str | None, current: Hyperparameters, patch: dict[str, Any]) -> str:
    if patch:
        return f"{verb} {algorithm}: " + ", ".join(
            f"{name} {_show(current.get(name))} → {_show(value)}" for name, value in patch.items()
        )
    return f"{verb} the model (no automatic change for {algorithm or 'this algorithm'})"


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Class imbalance and fairness
# ---------------------------------------------------------------------------------------------


def _imbalance(counts: dict[str, int], algorithm: str | None, current: Hyperparameters) -> Suggestion | None:
    """Class weights when smallest / largest class count < IMBALANCE_RATIO (see remedies)."""
    smallest, largest = min(counts, key=counts.__getitem__), max(counts, key=counts.__getitem__)
    if counts[largest] <= 0 or counts[smallest] / counts[largest] >= IMBALANCE_RATIO:
        return None
    ratio = counts[smallest] / counts[largest]
    figure = (
        f"smallest class '{smallest}' {counts[smallest]} rows vs largest '{largest}' "
        f"{counts[largest]} rows: ratio {ratio:.2f} (< {IMBALANCE_RATIO:g})"
    )
    patch = class_weights(algorithm, current, counts)
    message = "The classes are imbalanced, so errors on the minority class weigh little in training: "
    if patch:
        message += _action("weight the classes of", algorithm, current, patch)
        if "scale_pos_weight" in patch:
            message += " (negatives / positives, as the XGBoost documentation advises)"
    else:
        message += _no_class_weights(algorithm, current, len(counts))
    return Suggestion(kind="imbalance", message=message, figure=figure, value=round(ratio, 4), patch=patch)


def _no_class_weights(algorithm: str | None, current: Hyperparameters, classes: int) -> str:
    if current.get("class_weight") is not None:
        why = f"class_weight is already {current['class_weight']}"
    elif algorithm == "xgboost" and classes > 2:
        why = f"XGBoost's scale_pos_weight applies to two classes, not {classes}"
    elif algorithm == "xgboost":
        why = f"scale_pos_weight is already {current.get('scale_pos_weight')}"
    else:
        why = f"{algorithm or 'this algorithm'} has no class-weight hyperparameter"
    return f"{why}; resample the training data or collect more rows of the minority class"


def _fairness(report: EvaluationReport, fairness: FairnessReport) -> Suggestion:
    groups = _extreme_groups(fairness)
    figure = (
        f"{fairness.metric} of '{fairness.sensitive_feature}': {groups}: difference "
        f"{fmt(fairness.difference)} (> {fairness.max_difference:g} allowed)"
    )
    message = (
        f"The model's {fairness.metric} differs between the groups of '{fairness.sensitive_feature}' "
        f"more than allowed ({groups}). Look at the role of '{fairness.sensitive_feature}': "
        f"{_shap_rank(report, fairness)}; check whether some groups are under-represented in the "
        "training data and whether the feature (or a proxy of it) should be used at all. "
        "No automatic patch: this needs a person's judgement."
    )
    return Suggestion(
        kind="fairness",
        message=message,
        figure=figure,
        metric=fairness.metric,
        value=fairness.difference,
    )


def _extreme_groups(fairness: FairnessReport) -> str:
    """``group 'a' 0.410 vs group 'b' 0.640``: the lowest and highest groups on the metric."""
    values = {g: m[fairness.metric] for g, m in fairness.by_group.items() if fairness.metric in m}
    if len(values) < 2:
        return f"groups {', '.join(repr(g) for g in fairness.by_group) or 'not reported'}"
    low, high = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
    return f"group '{low}' {fmt(values[low])} vs group '{high}' {fmt(values[high])}"


def _shap_rank(report: EvaluationReport, fairness: FairnessReport) -> str:
    if report.shap is None:
        return "add `evaluation.explainability: shap` to see how much the model relies on it"
    feature = fairness.sensitive_feature
    for rank, item in enumerate(report.shap.top_features, start=1):
        if item.feature == feature or item.feature.startswith(f"{feature}_"):
            return f"it ranks #{rank} by mean |SHAP| ({item.mean_abs_shap:.4g}), so the model relies on it"
    return "it is not among the top features by mean |SHAP|, so look for proxies of it"
