"""What the training program and the evaluation share about clustering and dimensionality reduction.

The model folder of an unsupervised model holds, besides ``model.joblib`` and ``metadata.json``:

- clustering: ``labels.parquet``, one row per training row: ``cluster`` (the label the
  algorithm gave it; -1 is DBSCAN's noise) and the dataset's label column when the spec names
  one (``dataset.target``: kept out of the features, used only to colour plots);
- dimensionality reduction: ``embedding.parquet``, one row per training row:
  ``component_1`` .. ``component_k`` and the label column when there is one.

Also here: the preprocessing options these tasks refuse (they need a target), and the advice
given when a clustering has too few clusters to be scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: The tasks without a target that the scikit-learn program trains.
TASKS = ("clustering", "dimensionality_reduction")
#: Artifacts of the model folder (see the module docstring).
LABELS_FILE = "labels.parquet"
EMBEDDING_FILE = "embedding.parquet"
#: Column of ``labels.parquet`` holding each training row's cluster.
CLUSTER_COLUMN = "cluster"
#: How noise rows enter the clustering scores (``common.metrics.clustering_metrics``).
NOISE_HANDLING = (
    "noise rows (label -1) are left out of silhouette, davies_bouldin and calinski_harabasz; "
    "noise_fraction is their share of the rows"
)
#: Algorithms whose fitted model has no transform or predict for new rows.
NO_TRANSFORM = {
    "tsne": (
        "t-SNE has no transform for new points: it embeds only the training rows it was fitted "
        "on, so its metrics and plot cover the training rows and the model cannot be deployed "
        "as an endpoint"
    ),
}


def component_names(k: int) -> list[str]:
    """Return the embedding's column names ``component_1`` .. ``component_k``."""
    return [f"component_{i}" for i in range(1, k + 1)]


def cluster_sizes(labels: Any) -> dict[str, int]:
    """Return cluster label -> number of rows, labels as strings in ascending order (``"-1"`` is noise).

    Args:
        labels: integer cluster labels, shape (n,).
    """
    names, counts = np.unique(np.asarray(labels, dtype=int), return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts, strict=True)}


def check_preprocessing(preprocessing: Mapping[str, Any], task: str) -> None:
    """Refuse the preprocessing options that need a target column to predict.

    Target encoding replaces a category by the mean target of its rows, and feature selection
    ranks features by their relation to the target; clustering and dimensionality reduction
    have no target (the spec's ``dataset.target`` there is only a label for plots).

    Args:
        preprocessing: as ``PreprocessingSpec`` dumps it.
        task: ``clustering`` or ``dimensionality_reduction``.

    Raises:
        ValueError: ``encoding: target`` or a ``feature_selection`` section, naming the field
            and the fix.
    """
    problems = []
    if preprocessing.get("encoding") == "target":
        problems.append(
            f"preprocessing.encoding 'target' needs a target to predict and {task} has none; use "
            "onehot or label"
        )
    if preprocessing.get("feature_selection"):
        problems.append(
            f"preprocessing.feature_selection ranks features against a target to predict and {task} "
            "has none; remove it"
        )
    if problems:
        raise ValueError("; ".join(problems))


def clustering_advice(
    algorithm: str, hyperparameters: Mapping[str, Any], n_clusters: int, noise_fraction: float
) -> str:
    """Say what to change when rows fall into fewer than 2 clusters (the scores need 2 or more).

    Args:
        algorithm: ``kmeans`` or ``dbscan``.
        hyperparameters: the estimator's hyperparameters (``eps``, ``min_samples``,
            ``n_clusters``).
        n_clusters: the clusters found among the rows (noise excluded).
        noise_fraction: the share of rows labelled noise, a fraction.

    Returns:
        One sentence naming the hyperparameters to change and in which direction.
    """
    if algorithm == "dbscan":
        eps, min_samples = hyperparameters.get("eps"), hyperparameters.get("min_samples")
        if noise_fraction >= 0.5:
            return (
                f"most rows ({noise_fraction:.0%}) are noise: raise hyperparameters.eps (now {eps}) or "
                f"lower hyperparameters.min_samples (now {min_samples})"
            )
        return (
            f"the rows merged into {n_clusters} cluster(s): lower hyperparameters.eps (now {eps}) or "
            f"raise hyperparameters.min_samples (now {min_samples}); with scaling: none, eps is in "
            "the raw units of the features"
        )
    return (
        f"lower hyperparameters.n_clusters (now {hyperparameters.get('n_clusters')}) or add rows to the split"
    )
