"""The training jobs' fitted pipelines as numpy operations, for single-row latency.

A fitted ``Pipeline`` spends about 5 ms on one row in ``ColumnTransformer``'s pandas handling
and scikit-learn's input validation, while the arithmetic it does takes microseconds. For the
pipelines ``training_containers.common.preprocessing`` builds, this module replays the fitted
transforms with their own fitted attributes:

- ``SimpleImputer``: missing values replaced by ``statistics_``;
- ``StandardScaler``: ``(x - mean_) / scale_`` (each only when fitted with it);
- ``MinMaxScaler``: ``x * scale_ + min_`` (clipped to ``feature_range`` when ``clip``);
- ``OneHotEncoder`` (``handle_unknown="ignore"``) and ``OrdinalEncoder``
  (``handle_unknown="use_encoded_value"``): the index of the value in ``categories_``;
- any other column transformer (``TargetEncoder``): its own ``transform`` on the columns;
- the selection step: ``get_support()``;
- the estimator: XGBoost's ``Booster.inplace_predict``, or the estimator's own ``predict`` and
  ``predict_proba`` on the transformed matrix.

``compile_pipeline`` checks the result against the pipeline itself on probe rows (values around
the imputer's statistics, missing values, every category and an unseen one) and returns None when
they differ or the pipeline has another shape, so the caller keeps the pipeline.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from training_containers.inference.schema import InputSchema, Rows, rows_frame

#: Probe rows compared at compile time.
PROBE_ROWS = 64
#: Largest difference allowed between the compiled and the pipeline's probabilities.
TOLERANCE = 1e-9


@dataclass
class _Group:
    """One ``ColumnTransformer`` entry: which input columns, and how they become output columns."""

    columns: list[int]
    numeric: bool
    apply: Callable[[np.ndarray], np.ndarray]


@dataclass
class CompiledPipeline:
    """A pipeline as numpy operations: ``transform`` then ``predict``.

    Attributes:
        groups: the column groups, in the ``ColumnTransformer``'s output order.
        support: the selected output columns, or None.
        estimator: the last step.
        booster_output: ``binary``, ``multiclass`` or ``regression`` when XGBoost's booster
            predicts directly, else None.
        classes: the estimator's ``classes_`` (classifiers), else None.
    """

    groups: list[_Group]
    support: np.ndarray | None
    estimator: Any
    booster_output: str | None
    classes: np.ndarray | None

    def transform(self, numbers: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """The preprocessed matrix (n, width) of the rows.

        Args:
            numbers: numeric inputs (n, p) as float, NaN missing, in the schema's order.
            categories: categorical inputs (n, q) as objects, None missing, in the schema's order.
        """
        parts = [
            group.apply(numbers[:, group.columns] if group.numeric else categories[:, group.columns])
            for group in self.groups
        ]
        matrix = parts[0] if len(parts) == 1 else np.hstack(parts)
        return matrix if self.support is None else matrix[:, self.support]

    def predict(self, matrix: np.ndarray, probabilities: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (n,) and, when asked and available, class probabilities (n, K)."""
        if self.booster_output is not None:
            raw = np.asarray(self.estimator.get_booster().inplace_predict(matrix))
            if self.booster_output == "regression":
                return raw.reshape(-1), None
            proba = (
                np.column_stack([1 - raw, raw])
                if self.booster_output == "binary"
                else raw.reshape(len(matrix), -1)
            )
            assert self.classes is not None
            return self.classes[np.argmax(proba, axis=1)], proba if probabilities else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # fitted with column names, given an array
            predicted = np.asarray(self.estimator.predict(matrix))
            proba = None
            if probabilities and hasattr(self.estimator, "predict_proba"):
                proba = np.asarray(self.estimator.predict_proba(matrix), dtype=float)
        return predicted, proba


def compile_pipeline(pipeline: Any, schema: InputSchema) -> CompiledPipeline | None:
    """Compile a training job's fitted pipeline, or return None when it cannot be (see the module).

    Args:
        pipeline: ``Pipeline([("preprocess", Pipeline([("columns", ColumnTransformer),
            ("select", selector)?])), ("estimator", estimator)])``.
        schema: the model's inputs.
    """
    try:
        compiled = _compile(pipeline, schema)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None
    if compiled is None or not _agrees(compiled, pipeline, schema):
        return None
    return compiled


def _compile(pipeline: Any, schema: InputSchema) -> CompiledPipeline | None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2 or not isinstance(steps[0][1], Pipeline):
        return None
    preprocess, estimator = steps[0][1], steps[1][1]
    inner = dict(preprocess.steps)
    columns = inner.get("columns")
    if not isinstance(columns, ColumnTransformer) or set(inner) - {"columns", "select"}:
        return None
    groups = _groups(columns, schema)
    if not groups:
        return None
    support = np.asarray(inner["select"].get_support()) if "select" in inner else None
    classes = np.asarray(estimator.classes_) if hasattr(estimator, "classes_") else None
    return CompiledPipeline(groups, support, estimator, _booster_output(estimator, classes), classes)


def _groups(columns: Any, schema: InputSchema) -> list[_Group] | None:
    """The ``ColumnTransformer``'s entries as compiled groups.

    None when an entry mixes numeric and categorical columns, or a remainder is kept.
    """
    numeric_names, categorical_names, types = (
        schema.numeric_names,
        schema.categorical_names,
        schema.feature_types,
    )
    groups = []
    for label, transformer, selected in columns.transformers_:
        if label == "remainder" or transformer == "drop":
            if label == "remainder" and transformer != "drop" and len(selected):
                return None
            continue
        selected = list(selected)
        if all(types.get(c) == "numeric" for c in selected):
            positions = [numeric_names.index(c) for c in selected]
            groups.append(_Group(positions, True, _numeric_steps(transformer)))
        elif all(types.get(c) == "categorical" for c in selected):
            positions = [categorical_names.index(c) for c in selected]
            groups.append(_Group(positions, False, _categorical_steps(transformer)))
        else:
            return None
    return groups


def _booster_output(estimator: Any, classes: np.ndarray | None) -> str | None:
    """What XGBoost's booster predicts for this estimator's objective.

    None when the estimator is not XGBoost's, or its objective's raw output is not what the
    estimator returns.
    """
    if not hasattr(estimator, "get_booster"):
        return None
    objective = str(estimator.get_params().get("objective") or "")
    if objective.startswith("binary:logistic"):
        return "binary"
    if objective.startswith("multi:softprob"):
        return "multiclass"
    if objective.startswith("reg:") and classes is None:
        return "regression"
    return None


def _numeric_steps(transformer: Any) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    operations: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in [s for _, s in getattr(transformer, "steps", [("only", transformer)])]:
        if isinstance(step, SimpleImputer) and not step.add_indicator and np.isnan(step.missing_values):
            fill = np.asarray(step.statistics_, dtype=float)
            operations.append(lambda x, fill=fill: np.where(np.isnan(x), fill, x))
        elif isinstance(step, StandardScaler):
            mean = step.mean_ if step.with_mean else None
            scale = step.scale_ if step.with_std else None
            operations.append(lambda x, mean=mean, scale=scale: _standard(x, mean, scale))
        elif isinstance(step, MinMaxScaler):
            low, high = step.feature_range
            operations.append(
                lambda x, s=step, low=low, high=high: (
                    np.clip(x * s.scale_ + s.min_, low, high) if s.clip else x * s.scale_ + s.min_
                )
            )
        else:
            raise TypeError(f"no compiled form of {type(step).__name__}")

    def apply(x: np.ndarray) -> np.ndarray:
        x = x.astype(float, copy=True)
        for operation in operations:
            x = operation(x)
        return x

    return apply


def _standard(x: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    if mean is not None:
        x = x - mean
    if scale is not None:
        x = x / scale
    return x


def _categorical_steps(transformer: Any) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    steps = [s for _, s in getattr(transformer, "steps", [("only", transformer)])]
    operations: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in steps:
        if isinstance(step, SimpleImputer) and not step.add_indicator:
            fill = list(step.statistics_)
            operations.append(lambda x, fill=fill: _fill_objects(x, fill))
        elif (
            isinstance(step, OneHotEncoder)
            and step.handle_unknown == "ignore"
            and step.drop is None
            and not getattr(step, "_infrequent_enabled", False)
        ):
            lookups = [{value: i for i, value in enumerate(c)} for c in step.categories_]
            operations.append(lambda x, lookups=lookups: _one_hot(x, lookups))
        elif (
            isinstance(step, OrdinalEncoder)
            and step.handle_unknown == "use_encoded_value"
            and not getattr(step, "_infrequent_enabled", False)
        ):
            lookups = [{value: i for i, value in enumerate(c)} for c in step.categories_]
            unknown = float(step.unknown_value)
            operations.append(lambda x, lookups=lookups, unknown=unknown: _ordinal(x, lookups, unknown))
        else:
            sklearn_step = step

            def own(x: np.ndarray, step: Any = sklearn_step) -> np.ndarray:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    return np.asarray(step.transform(x), dtype=float)

            operations.append(own)

    def apply(x: np.ndarray) -> np.ndarray:
        for operation in operations:
            x = operation(x)
        return np.asarray(x, dtype=float)

    return apply


def _fill_objects(x: np.ndarray, fill: list[Any]) -> np.ndarray:
    out = x.copy()
    for j, value in enumerate(fill):
        column = out[:, j]
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in column], dtype=bool)
        column[missing] = value
    return out


def _one_hot(x: np.ndarray, lookups: list[dict[Any, int]]) -> np.ndarray:
    widths = [len(lookup) for lookup in lookups]
    out = np.zeros((len(x), sum(widths)))
    offset = 0
    for j, lookup in enumerate(lookups):
        for i, value in enumerate(x[:, j]):
            index = lookup.get(value)
            if index is not None:
                out[i, offset + index] = 1.0
        offset += widths[j]
    return out


def _ordinal(x: np.ndarray, lookups: list[dict[Any, int]], unknown: float) -> np.ndarray:
    out = np.empty(x.shape, dtype=float)
    for j, lookup in enumerate(lookups):
        out[:, j] = [lookup.get(value, unknown) for value in x[:, j]]
    return out


def _agrees(compiled: CompiledPipeline, pipeline: Any, schema: InputSchema) -> bool:
    """Whether the compiled pipeline gives the pipeline's predictions and probabilities on probe rows."""
    rng = np.random.default_rng(0)
    numeric, categorical = schema.numeric_names, schema.categorical_names
    centre, spread = _numeric_probe_scale(pipeline, len(numeric))
    numbers = centre + spread * rng.normal(size=(PROBE_ROWS, len(numeric)))
    if len(numeric):
        numbers[rng.random(numbers.shape) < 0.1] = np.nan
    seen = _categories(pipeline, len(categorical))
    categories = np.empty((PROBE_ROWS, len(categorical)), dtype=object)
    for j, values in enumerate(seen):
        choices = [*values, None, "__unseen__"]
        categories[:, j] = [choices[i % len(choices)] for i in range(PROBE_ROWS)]
    frame = rows_frame(schema, Rows(numbers, categories))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(pipeline.predict(frame))
        expected_proba = (
            np.asarray(pipeline.predict_proba(frame), dtype=float)
            if hasattr(pipeline, "predict_proba")
            else None
        )
        predicted, proba = compiled.predict(compiled.transform(numbers, categories), probabilities=True)
    if not np.array_equal(np.asarray(predicted), expected):
        return bool(np.allclose(predicted, expected, rtol=0, atol=TOLERANCE)) and compiled.classes is None
    if expected_proba is not None:
        return proba is not None and bool(np.allclose(proba, expected_proba, rtol=0, atol=TOLERANCE))
    return True


def _numeric_probe_scale(pipeline: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre and spread of probe values: the imputer's statistics and the scaler's scale."""
    centre, spread = np.zeros(width), np.ones(width)
    try:
        numeric = dict(pipeline.steps[0][1].steps)["columns"].named_transformers_["numeric"]
        for _, step in getattr(numeric, "steps", []):
            if hasattr(step, "statistics_"):
                centre = np.asarray(step.statistics_, dtype=float)
            if getattr(step, "scale_", None) is not None and hasattr(step, "mean_"):
                spread = np.asarray(step.scale_, dtype=float)
    except (AttributeError, KeyError, IndexError):
        pass
    return centre, spread


def _categories(pipeline: Any, width: int) -> list[list[Any]]:
    """Each categorical column's known categories (from its encoder), or none."""
    try:
        categorical = dict(pipeline.steps[0][1].steps)["columns"].named_transformers_["categorical"]
        for _, step in getattr(categorical, "steps", []):
            if hasattr(step, "categories_"):
                return [list(c) for c in step.categories_]
    except (AttributeError, KeyError, IndexError):
        pass
    return [[] for _ in range(width)]
