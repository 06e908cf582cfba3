"""DBSCAN that can label new rows: ``InductiveDBSCAN``.

scikit-learn's ``DBSCAN`` clusters the rows it is fitted on (``labels_``) and has no
``predict``. This estimator fits ``DBSCAN`` unchanged and adds the assignment that follows from
DBSCAN's own definitions (Ester, Kriegel, Sander & Xu 1996, "A density-based algorithm for
discovering clusters in large spatial databases with noise"): a point within ``eps`` of a core
point is density-reachable from it, so it belongs to that core point's cluster; a point within
``eps`` of no core point is noise. A new row therefore takes the label of its nearest core
sample when that sample is within ``eps``, else -1. This is the approach scikit-learn's
documentation points to for clusterers without ``predict`` (the "Inductive Clustering" example
and the DBSCAN ``components_`` attribute: "copy of each core sample found by training").

The class lives in the container package so that a pickled model (``model.joblib``) unpickles
wherever ``training_containers`` imports: the training job, the evaluation job, the registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted, validate_data

#: Label of rows that belong to no cluster (scikit-learn's DBSCAN convention).
NOISE = -1


class InductiveDBSCAN(ClusterMixin, BaseEstimator):
    """DBSCAN clustering plus a ``predict`` that assigns new rows to the nearest core sample's cluster.

    Args:
        eps: neighbourhood radius, in the units of the (preprocessed) features.
        min_samples: rows within ``eps`` (the row itself included) that make a core point.
        metric: distance between rows: ``euclidean``, ``manhattan``, ``chebyshev`` or ``cosine``.

    Attributes (after ``fit``):
        labels_: DBSCAN's label of each training row, shape (n,); -1 is noise. These are the
            training rows' own labels; ``predict`` is for new rows.
        core_sample_indices_: indices of the core samples among the training rows.
        components_: the core samples, shape (n_core, n_features).
        n_clusters_: number of clusters (distinct labels other than -1).
        n_features_in_: number of features seen in ``fit``.
    """

    def __init__(self, eps: float = 0.5, min_samples: int = 5, metric: str = "euclidean") -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric

    def fit(self, X: Any, y: Any = None) -> InductiveDBSCAN:
        """Cluster ``X`` (shape (n, n_features)) with scikit-learn's DBSCAN and index its core samples.

        Args:
            X: the training rows.
            y: ignored (present for scikit-learn's API).

        Returns:
            The fitted estimator.

        Raises:
            ValueError: as ``DBSCAN.fit`` does (bad parameters, non-finite values).
        """
        X = validate_data(self, X, dtype=float)
        dbscan = DBSCAN(eps=self.eps, min_samples=self.min_samples, metric=self.metric).fit(X)
        self.labels_ = dbscan.labels_
        self.core_sample_indices_ = dbscan.core_sample_indices_
        self.components_ = dbscan.components_
        self.n_clusters_ = len(np.unique(self.labels_[self.labels_ != NOISE]))
        self._core_labels = self.labels_[self.core_sample_indices_]
        self._neighbors = (
            NearestNeighbors(n_neighbors=1, metric=self.metric).fit(self.components_)
            if len(self.components_)
            else None
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Label each row of ``X`` (shape (m, n_features)) with its nearest core sample's cluster.

        A row farther than ``eps`` from every core sample (or any row when training found no core
        sample) is noise, -1.

        Returns:
            Cluster labels, shape (m,), integers; -1 is noise.

        Raises:
            sklearn.exceptions.NotFittedError: ``fit`` has not been called.
            ValueError: ``X`` has a different number of features than the training rows.
        """
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, dtype=float, reset=False)
        labels = np.full(len(X), NOISE, dtype=int)
        if self._neighbors is None or len(X) == 0:
            return labels
        distances, indices = self._neighbors.kneighbors(X)
        reachable = distances[:, 0] <= self.eps
        labels[reachable] = self._core_labels[indices[reachable, 0]]
        return labels
