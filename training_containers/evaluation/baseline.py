"""The drift baseline: per-feature statistics of the training split, for later drift checks.

``baseline.json`` (``BASELINE_VERSION``) holds, for each raw feature column of the model:

- numeric: ``count`` (non-missing rows), ``missing_fraction``, ``mean``, ``std`` (pandas'
  sample standard deviation, ddof=1), ``min``, ``p1``, ``p5``, ``p25``, ``p50``, ``p75``, ``p95``,
  ``p99`` (pandas ``Series.quantile``, linear interpolation), ``max`` and a ``histogram``:
  ``edges`` are the training deciles (duplicates removed, so tied values give fewer bins) and
  ``fractions`` the share of non-missing training rows in each bin (they sum to 1). For the
  Population Stability Index the first and last bins are open-ended (``open_ended: true``):
  new values below ``edges[0]`` or above ``edges[-1]`` count in them. ``sample`` holds up to
  ``SAMPLE_SIZE`` training values drawn without replacement (seeded), for the monitor's
  two-sample Kolmogorov-Smirnov test.
- categorical: ``count``, ``missing_fraction`` and ``frequencies`` (category -> share of the
  non-missing rows; beyond ``MAX_CATEGORIES`` the rarest are pooled under ``OTHER``).

With a target, ``target_distribution`` describes it the same way (categorical for
classification, numeric for regression): the monitor compares the endpoint's predictions with
it (prediction drift).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Format version of baseline.json; bump it when a field changes meaning.
BASELINE_VERSION = 2
#: Quantiles recorded for numeric features, by name.
QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
#: Number of histogram bins (deciles) before tied edges are merged.
BINS = 10
#: Most categories kept per categorical feature; the rest are pooled.
MAX_CATEGORIES = 100
OTHER = "__other__"
#: Training values kept per numeric feature for the KS test.
SAMPLE_SIZE = 2000


def build_baseline(
    frame: pd.DataFrame,
    feature_types: dict[str, str],
    target: str | None,
    target_kind: str | None = None,
    split: str = "train",
) -> dict[str, Any]:
    """Describe a split's feature columns (and its target, given ``target_kind``).

    Args:
        frame: the split's rows.
        feature_types: column -> ``numeric`` | ``categorical``, in the model's input order; a
            column missing from it is typed from its dtype.
        target: the target column (recorded; described when ``target_kind`` is given and the
            column is in ``frame``).
        target_kind: ``numeric`` or ``categorical``, or None.
        split: what the frame is (``train``; the monitor describes ``capture`` windows).

    Returns:
        ``{"version", "split", "n_rows", "target", "feature_names", "features": {name: stats}}``
        plus ``target_distribution`` when the target is described.

    Raises:
        KeyError: a feature column is not in ``frame``.
    """
    features = {}
    for column, kind in feature_types.items():
        values = frame[column]
        features[column] = _numeric(values) if kind == "numeric" else _categorical(values)
    described = {
        "version": BASELINE_VERSION,
        "split": split,
        "n_rows": len(frame),
        "target": target,
        "feature_names": list(feature_types),
        "features": features,
    }
    if target and target_kind and target in frame.columns:
        values = frame[target]
        described["target_distribution"] = (
            _numeric(values) if target_kind == "numeric" else _categorical(values)
        )
    return described


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
        sample=_sample(present.to_numpy()),
    )
    return stats


def _sample(values: np.ndarray) -> list[float]:
    """Up to ``SAMPLE_SIZE`` of the values, drawn without replacement with a fixed seed."""
    if len(values) > SAMPLE_SIZE:
        values = np.random.default_rng(0).choice(values, SAMPLE_SIZE, replace=False)
    return [float(v) for v in values]


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
