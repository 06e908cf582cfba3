"""The drift baseline: per-feature statistics of the training split, for later drift checks.

``baseline.json`` (``BASELINE_VERSION``) holds, for each raw feature column of the model:

- numeric: ``count`` (non-missing rows), ``missing_fraction``, ``mean``, ``std`` (pandas'
  sample standard deviation, ddof=1), ``min``, ``p1``, ``p5``, ``p25``, ``p50``, ``p75``, ``p95``,
  ``p99`` (pandas ``Series.quantile``, linear interpolation), ``max`` and a ``histogram``:
  ``edges`` are the training deciles (duplicates removed, so tied values give fewer bins) and
  ``fractions`` the share of non-missing training rows in each bin (they sum to 1). For the
  Population Stability Index the first and last bins are open-ended (``open_ended: true``):
  new values below ``edges[0]`` or above ``edges[-1]`` count in them.
- categorical: ``count``, ``missing_fraction`` and ``frequencies`` (category -> share of the
  non-missing rows; beyond ``MAX_CATEGORIES`` the rarest are pooled under ``OTHER``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Format version of baseline.json; bump it when a field changes meaning.
BASELINE_VERSION = 1
#: Quantiles recorded for numeric features, by name.
QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
#: Number of histogram bins (deciles) before tied edges are merged.
BINS = 10
#: Most categories kept per categorical feature; the rest are pooled.
MAX_CATEGORIES = 100
OTHER = "__other__"


def build_baseline(frame: pd.DataFrame, feature_types: dict[str, str], target: str | None) -> dict[str, Any]:
    """Describe the training split's feature columns.

    Args:
        frame: the training split's rows.
        feature_types: column -> ``numeric`` | ``categorical``, in the model's input order; a
            column missing from it is typed from its dtype.
        target: the target column (recorded, not described).

    Returns:
        ``{"version", "split", "n_rows", "target", "feature_names", "features": {name: stats}}``.

    Raises:
        KeyError: a feature column is not in ``frame``.
    """
    features = {}
    for column, kind in feature_types.items():
        values = frame[column]
        features[column] = _numeric(values) if kind == "numeric" else _categorical(values)
    return {
        "version": BASELINE_VERSION,
        "split": "train",
        "n_rows": len(frame),
        "target": target,
        "feature_names": list(feature_types),
        "features": features,
    }


def feature_kinds(frame: pd.DataFrame, features: list[str], known: dict[str, str]) -> dict[str, str]:
    """Return column -> kind for ``features``: ``known``, else numeric for non-boolean numbers."""
    kinds = {}
    for column in features:
        dtype = frame[column].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        kinds[column] = known.get(column) or ("numeric" if numeric else "categorical")
    return kinds


def _numeric(values: pd.Series) -> dict[str, Any]:
    present = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    stats: dict[str, Any] = {
        "type": "numeric",
        "count": len(present),
        "missing_fraction": _missing(values),
    }
    if present.empty:
        return {**stats, "histogram": {"edges": [], "fractions": [], "open_ended": True}}
    quantiles = present.quantile(list(QUANTILES.values()))
    stats.update(
        mean=float(present.mean()),
        std=float(present.std()) if len(present) > 1 else 0.0,
        min=float(present.min()),
        **{name: float(quantiles.iloc[i]) for i, name in enumerate(QUANTILES)},
        max=float(present.max()),
        histogram=_histogram(present.to_numpy()),
    )
    return stats


def _histogram(values: np.ndarray) -> dict[str, Any]:
    """Decile bins of the values: edges (ascending, unique) and the fraction in each bin.

    A constant column gets one bin ``[v - 0.5, v + 0.5]``.
    """
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, BINS + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    counts, _ = np.histogram(values, bins=edges)
    return {
        "edges": [float(e) for e in edges],
        "fractions": [float(c) for c in counts / counts.sum()],
        "open_ended": True,
    }


def _categorical(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(str)
    shares = present.value_counts(normalize=True, sort=True)
    frequencies = {str(k): float(v) for k, v in shares.iloc[:MAX_CATEGORIES].items()}
    if len(shares) > MAX_CATEGORIES:
        frequencies[OTHER] = float(shares.iloc[MAX_CATEGORIES:].sum())
    return {
        "type": "categorical",
        "count": len(present),
        "missing_fraction": _missing(values),
        "frequencies": frequencies,
    }


def _missing(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0
