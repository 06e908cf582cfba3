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
from sklearn import manifold
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


#: The label scikit-learn's DBSCAN gives noise rows (and ``InductiveDBSCAN.predict`` unreachable rows).
NOISE_LABEL = -1
#: Most rows ``silhouette_score`` looks at: it is O(n^2) in time and memory, so beyond this it
#: scores a seeded sample (its ``sample_size`` argument).
SILHOUETTE_MAX_ROWS = 10_000
#: Most rows ``trustworthiness`` looks at: it ranks all pairwise distances, O(n^2) in memory.
TRUSTWORTHINESS_MAX_ROWS = 2_000
#: Neighbours k of the trustworthiness (scikit-learn's default).
TRUSTWORTHINESS_NEIGHBORS = 5


def clustering_metrics(X: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Compute the internal quality of a clustering: silhouette, Davies-Bouldin, Calinski-Harabasz.

    Noise rows (label ``NOISE_LABEL``, -1, from DBSCAN) belong to no cluster, so they are left
    out of the three scores; ``noise_fraction`` says how many rows were left out (0 when the
    algorithm has no noise, e.g. k-means). The three scores are defined only when the clustered
    rows form ``2 <= n_clusters <= n_clustered - 1`` clusters (scikit-learn raises otherwise);
    when they are not, they are left out of the result and the caller says what to change.

    Sources: scikit-learn's ``silhouette_score`` (Rousseeuw 1987; in [-1, 1], higher is better;
    on a seeded sample of ``SILHOUETTE_MAX_ROWS`` rows beyond that size),
    ``davies_bouldin_score`` (Davies & Bouldin 1979; >= 0, lower is better) and
    ``calinski_harabasz_score`` (Calinski & Harabasz 1974; >= 0, higher is better).

    Args:
        X: the preprocessed rows the clustering saw, shape (n, n_features).
        labels: cluster label of each row, shape (n,); -1 is noise.
        seed: random seed of the silhouette's row sample.

    Returns:
        ``n_clusters`` (distinct non-noise labels), ``noise_fraction`` (a fraction in [0, 1])
        and, when defined, ``silhouette``, ``davies_bouldin`` and ``calinski_harabasz``.

    Raises:
        ValueError: ``X`` and ``labels`` have different numbers of rows.
    """
    labels = np.asarray(labels)
    if len(labels) != len(X):
        raise ValueError(f"{len(X)} rows but {len(labels)} cluster labels")
    clustered = labels != NOISE_LABEL
    n_clusters = len(np.unique(labels[clustered]))
    out = {
        "n_clusters": float(n_clusters),
        "noise_fraction": float(1.0 - clustered.mean()) if len(labels) else 0.0,
    }
    n_clustered = int(clustered.sum())
    if not 2 <= n_clusters <= n_clustered - 1:
        return out
    X_in, labels_in = np.asarray(X, dtype=float)[clustered], labels[clustered]
    sample = SILHOUETTE_MAX_ROWS if n_clustered > SILHOUETTE_MAX_ROWS else None
    out["silhouette"] = float(skm.silhouette_score(X_in, labels_in, sample_size=sample, random_state=seed))
    out["davies_bouldin"] = float(skm.davies_bouldin_score(X_in, labels_in))
    out["calinski_harabasz"] = float(skm.calinski_harabasz_score(X_in, labels_in))
    return out


def trustworthiness_sampled(
    X: np.ndarray,
    embedding: np.ndarray,
    n_neighbors: int = TRUSTWORTHINESS_NEIGHBORS,
    max_rows: int = TRUSTWORTHINESS_MAX_ROWS,
    seed: int = 0,
    metric: str = "euclidean",
) -> tuple[float | None, int]:
    """Compute the trustworthiness of an embedding on at most ``max_rows`` rows.

    Trustworthiness (Venna & Kaski 2001, "Neighborhood preservation in nonlinear projection
    methods: an experimental study"; scikit-learn's ``sklearn.manifold.trustworthiness``) is 1
    minus a penalty for rows that are among a row's k nearest neighbours in the embedding but
    not in the input space; it lies in [0, 1], higher is better. It needs all pairwise
    distances, so above ``max_rows`` rows a seeded uniform sample (without replacement) is
    scored. k must stay below half the rows: it is lowered to fit small samples.

    Args:
        X: the input rows (preprocessed), shape (n, n_features).
        embedding: their coordinates in the embedding, shape (n, n_components).
        n_neighbors: k, the neighbourhood size.
        max_rows: the most rows scored.
        seed: random seed of the sample.
        metric: distance in the input space (the one the embedding was fitted with).

    Returns:
        The trustworthiness (None with fewer than 3 rows, where no k fits) and the number of
        rows scored.

    Raises:
        ValueError: ``X`` and ``embedding`` have different numbers of rows.
    """
    if len(X) != len(embedding):
        raise ValueError(f"{len(X)} rows but an embedding of {len(embedding)} rows")
    rows = np.arange(len(X))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False))
    k = min(n_neighbors, math.ceil(len(rows) / 2) - 1)  # scikit-learn requires k < n / 2
    if k < 1:
        return None, len(rows)
    value = manifold.trustworthiness(
        np.asarray(X, dtype=float)[rows],
        np.asarray(embedding, dtype=float)[rows],
        n_neighbors=k,
        metric=metric,
    )
    return float(value), len(rows)


def embedding_metrics(
    X: np.ndarray,
    embedding: np.ndarray,
    reconstruction: np.ndarray | None = None,
    seed: int = 0,
    metric: str = "euclidean",
) -> tuple[dict[str, float], int]:
    """Compute how well an embedding keeps the rows' structure.

    ``explained_variance_ratio`` is the share of the rows' total variance that the
    reconstruction from the embedding keeps: scikit-learn's ``explained_variance_score`` with
    ``multioutput="variance_weighted"``, i.e. ``1 - sum_j Var(X_j - R_j) / sum_j Var(X_j)``. On
    the rows a PCA was fitted on it equals the sum of ``PCA.explained_variance_ratio_`` over the
    kept components; on held-out rows it is the same figure measured out of sample.

    Args:
        X: the preprocessed rows, shape (n, n_features).
        embedding: their coordinates, shape (n, n_components).
        reconstruction: the rows rebuilt from the embedding (``PCA.inverse_transform``), shape
            (n, n_features), or None when the method has no inverse (t-SNE).
        seed: random seed of the trustworthiness sample.
        metric: distance in the input space (the one the embedding was fitted with).

    Returns:
        ``trustworthiness`` (see ``trustworthiness_sampled``; left out below 3 rows) and, with a
        reconstruction, ``explained_variance_ratio`` (a fraction, at most 1), plus the number of
        rows the trustworthiness was computed on.
    """
    out: dict[str, float] = {}
    if reconstruction is not None and len(X) > 1:
        out["explained_variance_ratio"] = float(
            skm.explained_variance_score(X, reconstruction, multioutput="variance_weighted")
        )
    value, rows = trustworthiness_sampled(X, embedding, seed=seed, metric=metric)
    if value is not None:
        out["trustworthiness"] = value
    return out, rows
