"""Data drift of one feature against its training baseline: PSI, KS and chi-squared. Pure.

The baseline is the evaluation job's ``baseline.json`` entry of a feature
(``training_containers/evaluation/baseline.py``): for a numeric feature the training deciles'
``histogram`` (edges and fractions, first and last bins open-ended) and a ``sample`` of training
values; for a categorical feature the category ``frequencies``.

- **PSI** (Population Stability Index) over the baseline's bins:
  ``PSI = Σ_i (a_i − e_i) · ln(a_i / e_i)``, with ``e_i`` the baseline's and ``a_i`` the
  current share of bin ``i``, each floored at ``EPSILON`` so an empty bin stays finite.
  Source: Siddiqi, *Credit Risk Scorecards* (Wiley, 2006), ch. 8; Yurdakul, *Statistical
  Properties of the Population Stability Index* (2018). The usual reading: below 0.1 stable,
  0.1–0.25 a moderate shift, above 0.25 a major one; the spec's ``drift_psi`` (0.2 by default)
  is the alert threshold.
- **KS** (two-sample Kolmogorov–Smirnov, numeric features): ``scipy.stats.ks_2samp`` of the
  baseline's sample against the current values.
- **Chi-squared** (categorical features): ``scipy.stats.chisquare`` of the current counts
  against the baseline's shares scaled to the same total; categories the baseline never saw
  are pooled in one extra cell whose expected share is ``EPSILON``.

A feature drifts when its PSI exceeds the threshold; KS and chi-squared p-values are reported
beside it (with a million rows any difference is "significant", so they do not decide alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

#: Floor of a bin's share in PSI, so a bin empty on one side gives a finite term.
EPSILON = 1e-4
#: The significance level the tests are reported against.
P_VALUE_LEVEL = 0.05
#: Name of the pooled category of unseen values.
UNSEEN = "__unseen__"


class FeatureDrift(BaseModel):
    """The drift of one feature (or of the predictions) between the baseline and the current rows.

    Attributes:
        feature: the column (``prediction`` for the model's output).
        kind: ``numeric`` or ``categorical``.
        rows: current non-missing values compared.
        psi: Population Stability Index over the baseline's bins.
        test: ``ks`` or ``chi_squared``; None when no test could be run (no baseline sample).
        statistic: the test's statistic (KS: the largest CDF gap, a fraction; chi-squared: χ²).
        p_value: the test's p-value.
        drifted: ``psi`` exceeds the threshold it was judged against.
        threshold: that PSI threshold.
        baseline_shares: bin or category label -> the baseline's share (for plots and reports).
        current_shares: bin or category label -> the current share.
        missing_fraction: the current share of missing values.
    """

    model_config = ConfigDict(extra="forbid")

    feature: str
    kind: Literal["numeric", "categorical"]
    rows: int
    psi: float
    test: Literal["ks", "chi_squared"] | None = None
    statistic: float | None = None
    p_value: float | None = None
    drifted: bool
    threshold: float
    baseline_shares: dict[str, float] = Field(default_factory=dict)
    current_shares: dict[str, float] = Field(default_factory=dict)
    missing_fraction: float = 0.0


def psi(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, epsilon: float = EPSILON
) -> float:
    """Population Stability Index of two distributions over the same bins (see the module).

    Args:
        expected: the baseline's share of each bin (fractions summing to 1).
        actual: the current share of each bin, same length.
        epsilon: floor of each share.

    Returns:
        PSI, a non-negative number (0 for identical shares).

    Raises:
        ValueError: the two have different lengths or are empty.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.size == 0:
        raise ValueError(
            f"PSI needs two share vectors of the same non-zero length, got {e.size} and {a.size}"
        )
    e = np.maximum(e, epsilon)
    a = np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def bin_counts(values: np.ndarray, edges: Sequence[float], open_ended: bool = True) -> np.ndarray:
    """Count values in the bins ``[edges[i], edges[i+1])`` (the last bin closed), as numpy does.

    With ``open_ended`` values below ``edges[0]`` count in the first bin and values above
    ``edges[-1]`` in the last; without it they are not counted.

    Args:
        values: finite numbers.
        edges: ascending bin edges, at least two.
        open_ended: count values outside the edges in the first and last bins.

    Returns:
        One count a bin (``len(edges) - 1`` integers).
    """
    edge_array = np.asarray(edges, dtype=float)
    index = np.searchsorted(edge_array, values, side="right") - 1
    last = len(edge_array) - 2
    index[values == edge_array[-1]] = last  # numpy's last bin is closed on the right
    if open_ended:
        index = np.clip(index, 0, last)
    else:
        index = index[(index >= 0) & (index <= last)]
    return np.bincount(index, minlength=last + 1)[: last + 1]


def numeric_drift(
    feature: str,
    baseline: Mapping[str, Any],
    current: np.ndarray,
    threshold: float,
) -> FeatureDrift:
    """PSI over the baseline's histogram and KS against its sample, for one numeric feature.

    Args:
        feature: the column name.
        baseline: the feature's baseline entry (``histogram``: ``edges``, ``fractions``,
            ``open_ended``; optional ``sample``: training values).
        current: the current values, floats; NaN counts as missing.
        threshold: the PSI above which the feature drifts.

    Returns:
        The drift; with no current value, PSI 0 and not drifted.
    """
    values = np.asarray(current, dtype=float)
    present = values[np.isfinite(values)]
    missing = 1.0 - present.size / values.size if values.size else 0.0
    histogram = baseline.get("histogram") or {}
    edges = list(histogram.get("edges") or [])
    expected = np.asarray(histogram.get("fractions") or [], dtype=float)
    labels = [f"[{edges[i]:.4g}, {edges[i + 1]:.4g})" for i in range(len(edges) - 1)]
    if present.size == 0 or len(edges) < 2:
        return FeatureDrift(
            feature=feature, kind="numeric", rows=int(present.size), psi=0.0, drifted=False,
            threshold=threshold, missing_fraction=missing,
        )  # fmt: skip
    counts = bin_counts(present, edges, bool(histogram.get("open_ended", True)))
    actual = counts / max(counts.sum(), 1)
    value = psi(expected, actual)
    drift = FeatureDrift(
        feature=feature,
        kind="numeric",
        rows=int(present.size),
        psi=value,
        drifted=value > threshold,
        threshold=threshold,
        baseline_shares=dict(zip(labels, expected.tolist(), strict=True)),
        current_shares=dict(zip(labels, actual.tolist(), strict=True)),
        missing_fraction=missing,
    )
    sample = np.asarray(baseline.get("sample") or [], dtype=float)
    if sample.size:
        result = stats.ks_2samp(sample, present)
        drift = drift.model_copy(
            update={"test": "ks", "statistic": float(result.statistic), "p_value": float(result.pvalue)}
        )
    return drift


def categorical_drift(
    feature: str,
    baseline: Mapping[str, Any],
    current: Sequence[Any],
    threshold: float,
) -> FeatureDrift:
    """PSI and chi-squared over the baseline's categories, for one categorical feature.

    Args:
        feature: the column name.
        baseline: the feature's baseline entry (``frequencies``: category -> share).
        current: the current values; None and NaN count as missing; values are compared as
            strings, as the baseline stores them.
        threshold: the PSI above which the feature drifts.

    Returns:
        The drift; unseen categories are pooled under ``UNSEEN``.
    """
    frequencies: dict[str, float] = dict(baseline.get("frequencies") or {})
    present = [str(v) for v in current if v is not None and not (isinstance(v, float) and np.isnan(v))]
    missing = 1.0 - len(present) / len(current) if len(current) else 0.0
    if not present or not frequencies:
        return FeatureDrift(
            feature=feature, kind="categorical", rows=len(present), psi=0.0, drifted=False,
            threshold=threshold, missing_fraction=missing,
        )  # fmt: skip
    categories = list(frequencies)
    position = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1)
    unique, occurrences = np.unique(np.asarray(present, dtype=object).astype(str), return_counts=True)
    for category, occurrence in zip(unique, occurrences, strict=True):
        counts[position.get(str(category), len(categories))] += occurrence
    expected = np.asarray([frequencies[c] for c in categories] + [0.0])
    actual = counts / counts.sum()
    value = psi(expected, actual)
    expected_counts = np.maximum(expected, EPSILON)
    expected_counts = expected_counts / expected_counts.sum() * counts.sum()
    chi = stats.chisquare(counts, expected_counts)
    labels = [*categories, UNSEEN]
    return FeatureDrift(
        feature=feature,
        kind="categorical",
        rows=len(present),
        psi=value,
        test="chi_squared",
        statistic=float(chi.statistic),
        p_value=float(chi.pvalue),
        drifted=value > threshold,
        threshold=threshold,
        baseline_shares=dict(zip(labels, expected.tolist(), strict=True)),
        current_shares=dict(zip(labels, actual.tolist(), strict=True)),
        missing_fraction=missing,
    )
