"""Clustering and dimensionality reduction: the spec rules, the metric functions, the advice."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.metrics import davies_bouldin_score, silhouette_score

from mcp_server.core.spec.schema import SpecValidationError, validate_spec
from training_containers.common.metrics import (
    clustering_metrics,
    embedding_metrics,
    trustworthiness_sampled,
)
from training_containers.common.unsupervised import check_preprocessing, clustering_advice


def spec(task: str = "clustering", algorithm: str = "kmeans", **sections) -> dict:
    return {
        "model_type": "unsupervised_learning",
        "task": task,
        "algorithm": algorithm,
        "dataset": {"source": "sklearn://iris"},
        **sections,
    }


def error_paths(data: dict) -> dict[str, str]:
    with pytest.raises(SpecValidationError) as excinfo:
        validate_spec(data)
    return {e.path: e.message for e in excinfo.value.errors}


def test_clustering_needs_no_target_and_defaults_to_silhouette():
    validated = validate_spec(spec(hyperparameters={"n_clusters": 3}))
    assert validated.dataset.target is None
    assert validated.metrics == ["silhouette"]


def test_target_encoding_and_feature_selection_are_refused_without_a_target():
    errors = error_paths(
        spec(
            "dimensionality_reduction",
            "pca",
            preprocessing={"encoding": "target", "feature_selection": {"method": "importance", "k": 5}},
        )
    )
    assert set(errors) == {"preprocessing.encoding", "preprocessing.feature_selection"}
    assert "target encoding needs a target to predict" in errors["preprocessing.encoding"]
    assert "use onehot or label" in errors["preprocessing.encoding"]
    assert "remove it" in errors["preprocessing.feature_selection"]


def test_supervised_specs_keep_target_encoding_and_feature_selection():
    validated = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": "random_forest",
            "dataset": {"source": "sklearn://iris", "target": "target"},
            "preprocessing": {"encoding": "target", "feature_selection": {"k": 2}},
        }
    )
    assert validated.preprocessing.encoding == "target"


def test_tsne_has_no_explained_variance_and_defaults_to_trustworthiness():
    errors = error_paths(
        spec("dimensionality_reduction", "tsne", evaluation={"thresholds": {"explained_variance_ratio": 0.8}})
    )
    assert list(errors) == ["evaluation.thresholds.explained_variance_ratio"]
    assert "use trustworthiness" in errors["evaluation.thresholds.explained_variance_ratio"]
    assert validate_spec(spec("dimensionality_reduction", "tsne")).metrics == ["trustworthiness"]


def test_the_container_refuses_the_same_options_by_field_name():
    with pytest.raises(ValueError, match=r"preprocessing.encoding 'target'.*clustering has none"):
        check_preprocessing({"encoding": "target"}, "clustering")
    with pytest.raises(ValueError, match="preprocessing.feature_selection ranks features"):
        check_preprocessing({"feature_selection": {"k": 3}}, "dimensionality_reduction")
    check_preprocessing({"encoding": "onehot", "feature_selection": None}, "clustering")


def test_clustering_metrics_leave_noise_out_and_report_its_share():
    X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    labels = y.copy()
    labels[:9] = -1
    values = clustering_metrics(X, labels)
    kept = labels != -1
    assert values["n_clusters"] == 3
    assert values["noise_fraction"] == pytest.approx(0.1)
    assert values["silhouette"] == pytest.approx(silhouette_score(X[kept], labels[kept]))
    assert values["davies_bouldin"] == pytest.approx(davies_bouldin_score(X[kept], labels[kept]))
    assert values["silhouette"] != pytest.approx(silhouette_score(X, labels))


@pytest.mark.parametrize(
    ("labels", "clusters", "noise"),
    [
        (np.zeros(20, dtype=int), 1, 0.0),
        (np.full(20, -1), 0, 1.0),
        (np.r_[np.zeros(10), -np.ones(10)], 1, 0.5),
    ],
)
def test_fewer_than_two_clusters_give_no_scores(labels, clusters, noise):
    values = clustering_metrics(np.random.default_rng(0).normal(size=(20, 3)), labels.astype(int))
    assert values == {"n_clusters": clusters, "noise_fraction": noise}


def test_trustworthiness_is_sampled_beyond_max_rows():
    X = load_digits().data[:600]
    embedding = PCA(n_components=2, random_state=0).fit_transform(X)
    value, rows = trustworthiness_sampled(X, embedding, max_rows=200, seed=3)
    picked = np.sort(np.random.default_rng(3).choice(600, size=200, replace=False))
    assert rows == 200
    assert value == pytest.approx(trustworthiness(X[picked], embedding[picked], n_neighbors=5))
    assert trustworthiness_sampled(X[:2], embedding[:2]) == (None, 2)
    small, _ = trustworthiness_sampled(X[:6], embedding[:6])  # k lowered to 2 (< 6 / 2)
    assert small == pytest.approx(trustworthiness(X[:6], embedding[:6], n_neighbors=2))


def test_explained_variance_ratio_of_the_fitted_rows_is_the_pca_sum():
    X = load_digits().data
    pca = PCA(n_components=10, random_state=0).fit(X)
    embedding = pca.transform(X)
    values, rows = embedding_metrics(X, embedding, pca.inverse_transform(embedding))
    assert values["explained_variance_ratio"] == pytest.approx(pca.explained_variance_ratio_.sum(), abs=1e-9)
    assert rows == 1797 and 0.9 < values["trustworthiness"] <= 1
    assert "explained_variance_ratio" not in embedding_metrics(X, embedding, None)[0]


def test_clustering_advice_names_the_hyperparameter_and_direction():
    noisy = clustering_advice("dbscan", {"eps": 0.1, "min_samples": 5}, 0, 1.0)
    merged = clustering_advice("dbscan", {"eps": 9.0, "min_samples": 5}, 1, 0.0)
    assert "raise hyperparameters.eps (now 0.1)" in noisy
    assert "lower hyperparameters.eps (now 9.0)" in merged
    assert "hyperparameters.n_clusters (now 8)" in clustering_advice("kmeans", {"n_clusters": 8}, 1, 0.0)
