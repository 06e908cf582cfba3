"""Column transforms fitted inside the model: imputation, encoding, scaling, feature selection.

Everything is built from scikit-learn classes only, so a saved model (``joblib``) loads in any
environment that has scikit-learn, without this package. Row-level cleaning (duplicates, rows
with missing values under ``missing_values: drop``, outliers) is done by data preparation
before the job starts, not here.

The preprocessor is a ``Pipeline`` of ``columns`` (a ``ColumnTransformer`` over the numeric and
categorical columns) and, when feature selection is asked for, ``select``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import SelectFromModel, SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)

_IMPUTE_STRATEGY = {"mean": "mean", "median": "median", "mode": "most_frequent", "drop": "median"}


def build_preprocessor(
    preprocessing: Mapping[str, Any], feature_types: Mapping[str, str], task: str
) -> Pipeline:
    """Build the unfitted preprocessor for the given columns.

    Args:
        preprocessing: as ``PreprocessingSpec`` dumps it: ``missing_values`` (drop | mean |
            median | mode; drop imputes with the median as a guard, rows were dropped
            upstream), ``encoding`` (onehot | label | target), ``scaling`` (standard | minmax |
            none, numeric columns only) and ``feature_selection`` ({method: correlation |
            importance, k} or None). Missing keys take the spec's defaults.
        feature_types: column -> ``numeric`` | ``categorical``, in input order.
        task: ``classification`` or ``regression`` (chooses the selection scorer/model).

    Returns:
        ``Pipeline([("columns", ColumnTransformer), ("select", selector)?])``; fit it with
        ``fit_preprocessor`` so that ``k`` is clipped to the encoded width.

    Raises:
        ValueError: an unknown option value, or no feature columns.
    """
    numeric = [c for c, kind in feature_types.items() if kind == "numeric"]
    categorical = [c for c, kind in feature_types.items() if kind == "categorical"]
    if not numeric and not categorical:
        raise ValueError(f"no numeric or categorical feature columns in {dict(feature_types)!r}")
    transformers = []
    if numeric:
        transformers.append(("numeric", _numeric_pipeline(preprocessing), numeric))
    if categorical:
        transformers.append(("categorical", _categorical_pipeline(preprocessing), categorical))
    steps: list[tuple[str, Any]] = [
        ("columns", ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0))
    ]
    selection = preprocessing.get("feature_selection")
    if selection:
        steps.append(("select", _selector(selection, task)))
    return Pipeline(steps)


def fit_preprocessor(preprocessor: Pipeline, X: pd.DataFrame, y: np.ndarray) -> tuple[Pipeline, np.ndarray]:
    """Fit the preprocessor step by step, clipping the selection's ``k`` to the encoded width.

    The column step is fitted with ``fit_transform`` (``TargetEncoder`` cross-fits there, as
    ``Pipeline.fit`` would); the selector then sees the encoded matrix.

    Args:
        preprocessor: from ``build_preprocessor``.
        X: the feature columns, shape (n, n_columns).
        y: the target, shape (n,).

    Returns:
        The fitted preprocessor (the same object) and the transformed ``X``, shape
        (n, n_features_out).
    """
    columns = preprocessor.named_steps["columns"]
    encoded = np.asarray(columns.fit_transform(X, y), dtype=float)
    if "select" not in preprocessor.named_steps:
        return preprocessor, encoded
    selector = preprocessor.named_steps["select"]
    width = encoded.shape[1]
    if isinstance(selector, SelectKBest):
        selector.set_params(k=min(int(selector.k), width))
    else:
        selector.set_params(max_features=min(int(selector.max_features), width))
    return preprocessor, selector.fit_transform(encoded, y)


def infer_feature_types(frame: pd.DataFrame) -> dict[str, str]:
    """Return column -> ``numeric`` for numeric (not boolean) dtypes, else ``categorical``."""
    return {
        str(column): "numeric"
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        else "categorical"
        for column, dtype in frame.dtypes.items()
    }


def split_features(
    frame: pd.DataFrame, target: str, feature_types: Mapping[str, str], channel: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Split a channel's rows into features (the typed columns, in order) and target.

    Args:
        frame: the channel's rows.
        target: the target column.
        feature_types: column -> kind; the features to keep, in order.
        channel: the channel's name, for error messages.

    Returns:
        ``X`` with the feature columns, and ``y`` as a numpy array, shape (n,).

    Raises:
        ValueError: the target or a feature column is missing, or the target has missing values.
    """
    if target not in frame.columns:
        raise ValueError(
            f"target column {target!r} is not in the {channel} channel; its columns are "
            f"{list(frame.columns)[:20]}"
        )
    missing = [c for c in feature_types if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns {missing} are not in the {channel} channel")
    y = frame[target]
    if y.isna().any():
        raise ValueError(f"target column {target!r} has {int(y.isna().sum())} missing values in {channel}")
    return frame[list(feature_types)], y.to_numpy()


def _numeric_pipeline(preprocessing: Mapping[str, Any]) -> Pipeline:
    missing = preprocessing.get("missing_values", "median")
    if missing not in _IMPUTE_STRATEGY:
        raise ValueError(f"missing_values must be one of {sorted(_IMPUTE_STRATEGY)}, got {missing!r}")
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=_IMPUTE_STRATEGY[missing]))]
    scaling = preprocessing.get("scaling", "standard")
    if scaling == "standard":
        steps.append(("scale", StandardScaler()))
    elif scaling == "minmax":
        steps.append(("scale", MinMaxScaler()))
    elif scaling != "none":
        raise ValueError(f"scaling must be standard, minmax or none, got {scaling!r}")
    return Pipeline(steps)


def _categorical_pipeline(preprocessing: Mapping[str, Any]) -> Pipeline:
    encoding = preprocessing.get("encoding", "onehot")
    if encoding == "onehot":
        encoder: Any = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    elif encoding == "label":
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    elif encoding == "target":
        encoder = TargetEncoder()
    else:
        raise ValueError(f"encoding must be onehot, label or target, got {encoding!r}")
    return Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", encoder)])


def _selector(selection: Mapping[str, Any], task: str) -> Any:
    method, k = selection.get("method", "importance"), int(selection.get("k", 20))
    if k < 1:
        raise ValueError(f"feature_selection.k must be at least 1, got {k}")
    classification = task == "classification"
    if method == "importance":
        forest = (RandomForestClassifier if classification else RandomForestRegressor)(
            n_estimators=100, random_state=0
        )
        return SelectFromModel(forest, max_features=k, threshold=-np.inf)
    if method == "correlation":
        return SelectKBest(f_classif if classification else f_regression, k=k)
    raise ValueError(f"feature_selection.method must be importance or correlation, got {method!r}")
