"""Concrete hyperparameter changes per algorithm: regularise, add capacity, weight classes. Pure.

Each function takes the hyperparameters in effect (``current_hyperparameters``) and returns only
the names it changes, with values clamped into the ranges declared in
``core.spec.hyperparameters`` and checked against the algorithm's model; a value that cannot move
further is left out. The steps are conventional starting points, not tuned values:

* regularise (overfitting): xgboost ``max_depth`` × 2/3 (6 → 4), ``min_child_weight`` × 2, at
  least 3 (1 → 3), ``subsample`` down 0.1, at most 0.8 and at least 0.5 (1.0 → 0.8);
  random_forest ``max_depth`` null → 8 else × 2/3, ``min_samples_leaf`` × 2, at least 4
  (1 → 4); logistic_regression ``C`` × 0.3 (1.0 → 0.3); linear_regression ``alpha``
  0 → 1.0 else × 3; neural_network ``dropout`` + 0.1, at most 0.5 (0.1 → 0.2),
  ``weight_decay`` 0 → 1e-4 else × 10.
* grow (underfitting): xgboost ``n_estimators`` × 2 and at least its default (200),
  ``max_depth`` + 2; random_forest ``n_estimators`` × 2 and at least its default (100), a set
  ``max_depth`` × 2 and at least 8, ``min_samples_leaf`` halved; logistic ``C`` × 3;
  linear ``alpha`` ÷ 3 (0 below 0.001); neural_network each ``hidden_layers`` width × 2, at
  most 1024 ([64, 32] → [128, 64]), and ``epochs`` × 2. A model far below its default size gets the default at
  once rather than a doubling that would take several attempts to matter.
* class weights (imbalance): xgboost (binary) ``scale_pos_weight`` = negatives / positives, as
  the XGBoost parameter documentation advises; random_forest and logistic_regression
  ``class_weight: balanced``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from mcp_server.core.spec.hyperparameters import (
    HYPERPARAMETER_MODELS,
    RandomForestHyperparameters,
    XGBoostHyperparameters,
)

Hyperparameters = dict[str, Any]
_Rule = Callable[[Hyperparameters], Hyperparameters]


def current_hyperparameters(algorithm: str | None, given: dict[str, Any] | None) -> Hyperparameters:
    """Return the hyperparameters in effect: ``given`` over the library defaults of ``algorithm``."""
    model = HYPERPARAMETER_MODELS.get(algorithm or "")
    defaults = model().model_dump() if model is not None else {}
    return {**defaults, **(given or {})}


def regularise(algorithm: str | None, current: Hyperparameters) -> Hyperparameters:
    """Return the changes that regularise ``algorithm`` (``{}`` for other algorithms)."""
    return within_range(algorithm, current, _REGULARISE.get(algorithm or "", _nothing)(current))


def grow(algorithm: str | None, current: Hyperparameters) -> Hyperparameters:
    """Return the changes that give ``algorithm`` more capacity (``{}`` for other algorithms)."""
    return within_range(algorithm, current, _GROW.get(algorithm or "", _nothing)(current))


def class_weights(algorithm: str | None, current: Hyperparameters, counts: dict[str, int]) -> Hyperparameters:
    """Return the changes that weight the classes of ``algorithm``.

    Args:
        algorithm: the spec's algorithm.
        current: the hyperparameters in effect.
        counts: training rows per class in class-code order (``DatasetRef.class_counts``): for
            two classes the first is code 0 (negative), the second code 1 (XGBoost's positive).

    Returns:
        ``{"class_weight": "balanced"}``, ``{"scale_pos_weight": negatives / positives}`` (three
        decimals), or ``{}`` when already set or not available (xgboost with more classes).
    """
    proposed: Hyperparameters = {}
    if algorithm in ("random_forest", "logistic_regression") and current.get("class_weight") is None:
        proposed = {"class_weight": "balanced"}
    elif algorithm == "xgboost" and len(counts) == 2:
        negatives, positives = counts.values()
        if positives > 0 and negatives > 0:
            proposed = {"scale_pos_weight": round(negatives / positives, 3)}
    return within_range(algorithm, current, proposed)


def within_range(
    algorithm: str | None, current: Hyperparameters, proposed: Hyperparameters
) -> Hyperparameters:
    """Clamp each proposed value into its declared range; drop no-ops and anything invalid.

    Returns:
        The changes, or ``{}`` when the algorithm is unknown or the result fails validation.
    """
    model = HYPERPARAMETER_MODELS.get(algorithm or "")
    if model is None:
        return {}
    patch = {}
    for name, value in proposed.items():
        clamped = _clamp(value, model.model_fields[name].metadata)
        if clamped is not None and clamped != current.get(name):
            patch[name] = clamped
    try:
        model.model_validate({**current, **patch})
    except ValidationError:
        return {}
    return patch


def _clamp(value: Any, bounds: list[Any]) -> Any:
    """``value`` within ``ge``/``le`` bounds; ``None`` when it breaks a strict ``gt``/``lt`` bound."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    kind = type(value)
    for bound in bounds:
        ge, le = getattr(bound, "ge", None), getattr(bound, "le", None)
        gt, lt = getattr(bound, "gt", None), getattr(bound, "lt", None)
        if ge is not None:
            value = max(value, kind(ge))
        if le is not None:
            value = min(value, kind(le))
        if (gt is not None and value <= gt) or (lt is not None and value >= lt):
            return None
    return value


def _round(value: float) -> float:
    """Round to three significant digits (0.30000000000000004 -> 0.3)."""
    return float(f"{value:.3g}")


def _nothing(hp: Hyperparameters) -> Hyperparameters:
    return {}


def _shallower(depth: int) -> int:
    return max(1, depth * 2 // 3)


def _regularise_xgboost(hp: Hyperparameters) -> Hyperparameters:
    return {
        "max_depth": _shallower(hp["max_depth"]),
        "min_child_weight": max(3.0, 2.0 * hp["min_child_weight"]),
        "subsample": max(0.5, min(0.8, round(hp["subsample"] - 0.1, 2))),
    }


def _regularise_forest(hp: Hyperparameters) -> Hyperparameters:
    depth = hp["max_depth"]
    return {
        "max_depth": 8 if depth is None else _shallower(depth),
        "min_samples_leaf": max(4, 2 * hp["min_samples_leaf"]),
    }


def _regularise_logistic(hp: Hyperparameters) -> Hyperparameters:
    return {"C": _round(hp["C"] * 0.3)}


def _regularise_linear(hp: Hyperparameters) -> Hyperparameters:
    return {"alpha": 1.0 if hp["alpha"] == 0 else _round(hp["alpha"] * 3)}


def _regularise_network(hp: Hyperparameters) -> Hyperparameters:
    dropout = max(hp["dropout"], min(0.5, round(hp["dropout"] + 0.1, 2)))
    decay = 1e-4 if hp["weight_decay"] == 0 else _round(hp["weight_decay"] * 10)
    return {"dropout": dropout, "weight_decay": decay}


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].default


def _grow_xgboost(hp: Hyperparameters) -> Hyperparameters:
    trees = max(2 * hp["n_estimators"], _default(XGBoostHyperparameters, "n_estimators"))
    return {"n_estimators": trees, "max_depth": hp["max_depth"] + 2}


def _grow_forest(hp: Hyperparameters) -> Hyperparameters:
    trees = max(2 * hp["n_estimators"], _default(RandomForestHyperparameters, "n_estimators"))
    changes: Hyperparameters = {"n_estimators": trees}
    if hp["max_depth"] is not None:
        changes["max_depth"] = max(2 * hp["max_depth"], 8)
    changes["min_samples_leaf"] = max(1, hp["min_samples_leaf"] // 2)
    return changes


def _grow_logistic(hp: Hyperparameters) -> Hyperparameters:
    return {"C": _round(hp["C"] * 3)}


def _grow_linear(hp: Hyperparameters) -> Hyperparameters:
    alpha = hp["alpha"] / 3
    return {"alpha": 0.0 if alpha < 1e-3 else _round(alpha)}


def _grow_network(hp: Hyperparameters) -> Hyperparameters:
    return {"hidden_layers": [min(1024, 2 * w) for w in hp["hidden_layers"]], "epochs": 2 * hp["epochs"]}


_REGULARISE: dict[str, _Rule] = {
    "xgboost": _regularise_xgboost,
    "random_forest": _regularise_forest,
    "logistic_regression": _regularise_logistic,
    "linear_regression": _regularise_linear,
    "neural_network": _regularise_network,
}
_GROW: dict[str, _Rule] = {
    "xgboost": _grow_xgboost,
    "random_forest": _grow_forest,
    "logistic_regression": _grow_logistic,
    "linear_regression": _grow_linear,
    "neural_network": _grow_network,
}
