"""Clustering and dimensionality reduction in the scikit-learn program: k-means, DBSCAN, PCA, t-SNE.

The job reads the ``train`` (required) and ``validation`` (optional) channels. The features are
the typed columns (``_feature_types``, else every column but the label); the label column
(``_target``, optional for these tasks) is never a feature: it is only copied next to the
outputs so that plots can be coloured by it. The preprocessor of ``common.preprocessing`` is
fitted on the training rows (target encoding and feature selection are refused: they need a
target), then the estimator:

- ``kmeans``: ``sklearn.cluster.KMeans``; predicts the cluster of new rows.
- ``dbscan``: ``common.dbscan.InductiveDBSCAN`` (scikit-learn's DBSCAN, whose ``labels_`` are the
  training rows' clusters, plus a nearest-core-sample ``predict`` for new rows).
- ``pca``: ``sklearn.decomposition.PCA``; transforms new rows.
- ``tsne``: ``sklearn.manifold.TSNE``, ``fit_transform`` on the training rows only: it has no
  transform for new points, so it reports no validation metrics.

Metric lines (``common.metrics``): clustering ``{split}_silhouette``, ``_davies_bouldin``,
``_calinski_harabasz`` (noise rows left out), ``_n_clusters`` and ``_noise_fraction``; PCA
``{split}_explained_variance_ratio`` and ``_trustworthiness``; t-SNE ``train_trustworthiness``
and ``train_kl_divergence``. The model folder gets ``model.joblib``, ``metadata.json`` and
``labels.parquet`` or ``embedding.parquet`` (``common.unsupervised``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.pipeline import Pipeline

from training_containers.common.contract import JobConfig, TrainingContract, write_metric_lines
from training_containers.common.dbscan import InductiveDBSCAN
from training_containers.common.metrics import clustering_metrics, embedding_metrics, format_metric_lines
from training_containers.common.preprocessing import build_preprocessor, infer_feature_types
from training_containers.common.program import library_versions, resolve_hyperparameters
from training_containers.common.unsupervised import (
    CLUSTER_COLUMN,
    EMBEDDING_FILE,
    LABELS_FILE,
    NO_TRANSFORM,
    NOISE_HANDLING,
    check_preprocessing,
    cluster_sizes,
    clustering_advice,
    component_names,
)

#: Each algorithm's hyperparameters and defaults (mirrors KMeansHyperparameters,
#: DBSCANHyperparameters, PCAHyperparameters and TSNEHyperparameters in mcp_server/core).
DEFAULTS: dict[str, dict[str, Any]] = {
    "kmeans": {"n_clusters": 8, "init": "k-means++", "n_init": 10, "max_iter": 300, "tol": 1e-4},
    "dbscan": {"eps": 0.5, "min_samples": 5, "metric": "euclidean"},
    "pca": {"n_components": 2, "whiten": False, "svd_solver": "auto"},
    "tsne": {
        "n_components": 2,
        "perplexity": 30.0,
        "early_exaggeration": 12.0,
        "learning_rate": "auto",
        "max_iter": 1000,
        "metric": "euclidean",
    },
}
#: The task each algorithm solves.
TASK_OF = {
    "kmeans": "clustering",
    "dbscan": "clustering",
    "pca": "dimensionality_reduction",
    "tsne": "dimensionality_reduction",
}


@dataclass(frozen=True)
class UnlabelledData:
    """The job's description and its feature rows; the label column is kept apart.

    Attributes:
        config: the reserved hyperparameters and the estimator's ones.
        feature_types: column -> ``numeric`` | ``categorical`` (given, or inferred from dtypes).
        X_train: training features, shape (n, n_columns).
        labels_train: the label column's training values (n,), or None without a label column.
        X_validation: validation features, or None without a validation channel.
        labels_validation: the label column's validation values, or None.
    """

    config: JobConfig
    feature_types: dict[str, str]
    X_train: pd.DataFrame
    labels_train: pd.Series | None
    X_validation: pd.DataFrame | None
    labels_validation: pd.Series | None


def load_unlabelled(contract: TrainingContract, config: JobConfig) -> UnlabelledData:
    """Read the train and validation channels; split features from the optional label column.

    Raises:
        FileNotFoundError: the train channel is absent.
        ValueError: the label column or a feature column is missing from a channel.
    """
    train = contract.read_channel("train")
    assert train is not None  # required=True raises instead
    validation = contract.read_channel("validation", required=False)
    label = config.target
    feature_types = {
        c: kind
        for c, kind in (
            config.feature_types or infer_feature_types(train.drop(columns=[label] if label else []))
        ).items()
        if c != label
    }
    X_train, labels_train = _split(train, feature_types, label, "train")
    X_val, labels_val = (
        _split(validation, feature_types, label, "validation") if validation is not None else (None, None)
    )
    return UnlabelledData(config, feature_types, X_train, labels_train, X_val, labels_val)


def check_algorithm(config: JobConfig) -> None:
    """Refuse an algorithm this module does not train for the job's task.

    Raises:
        ValueError: naming the algorithms of the task.
    """
    if TASK_OF.get(config.algorithm) != config.task:
        allowed = sorted(a for a, task in TASK_OF.items() if task == config.task)
        raise ValueError(
            f"the scikit-learn program trains {allowed} for {config.task}, not {config.algorithm!r}"
        )


def build_estimator(config: JobConfig, params: dict[str, Any], n_rows: int) -> Any:
    """Return the unfitted estimator for the job's algorithm.

    Args:
        config: the job (algorithm, seed).
        params: the estimator's hyperparameters, defaults filled in.
        n_rows: the training rows (k-means' k and t-SNE's perplexity must stay below it).

    Raises:
        ValueError: the algorithm does not solve the task, or a hyperparameter does not fit
            the number of training rows.
    """
    check_algorithm(config)
    if config.algorithm == "kmeans":
        if params["n_clusters"] > n_rows:
            raise ValueError(
                f"hyperparameters.n_clusters ({params['n_clusters']}) exceeds the {n_rows} training rows; "
                "lower it"
            )
        return KMeans(**params, random_state=config.seed)
    if config.algorithm == "dbscan":
        return InductiveDBSCAN(**params)
    if config.algorithm == "pca":
        return PCA(**params, random_state=config.seed)
    if params["perplexity"] >= n_rows:
        raise ValueError(
            f"hyperparameters.perplexity ({params['perplexity']}) must be less than the {n_rows} "
            "training rows; lower it (5 to 50 is usual)"
        )
    return TSNE(**params, random_state=config.seed)


def train(contract: TrainingContract, config: JobConfig) -> None:
    """Fit, score and save one clustering or dimensionality-reduction model under the contract.

    Raises:
        ValueError: an algorithm of another task, a refused preprocessing option (target
            encoding, feature selection), unknown hyperparameters, a missing column, or
            hyperparameters that do not fit the data.
    """
    check_algorithm(config)
    check_preprocessing(config.preprocessing, config.task)
    params = resolve_hyperparameters(config.algorithm, config.hyperparameters, DEFAULTS[config.algorithm])
    data = load_unlabelled(contract, config)
    estimator = build_estimator(config, params, len(data.X_train))
    preprocessor = build_preprocessor(config.preprocessing, data.feature_types, config.task)
    encoded = np.asarray(preprocessor.fit_transform(data.X_train), dtype=float)
    started = time.perf_counter()
    if config.task == "clustering":
        facts, artifact = _fit_clustering(data, params, estimator, preprocessor, encoded)
    else:
        facts, artifact = _fit_embedding(data, params, estimator, preprocessor, encoded)
    write_metric_lines([f"fitted {config.algorithm} in {time.perf_counter() - started:.2f} s"])
    model = Pipeline([("preprocess", preprocessor), ("model", estimator)])
    contract.save_model(model, _metadata(data, params, facts))
    name = LABELS_FILE if config.task == "clustering" else EMBEDDING_FILE
    artifact.to_parquet(contract.model_dir / name, index=False)


def _fit_clustering(
    data: UnlabelledData, params: dict[str, Any], estimator: Any, preprocessor: Any, encoded: np.ndarray
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit the clusterer; print the metrics of the training rows' own labels and of validation."""
    labels = np.asarray(estimator.fit(encoded).labels_, dtype=int)
    results = {"train": clustering_metrics(encoded, labels, data.config.seed)}
    if data.X_validation is not None:
        rows = np.asarray(preprocessor.transform(data.X_validation), dtype=float)
        results["validation"] = clustering_metrics(rows, estimator.predict(rows), data.config.seed)
    for split, values in results.items():
        write_metric_lines(format_metric_lines(split, values))
        if "silhouette" not in values:
            advice = clustering_advice(
                data.config.algorithm, params, int(values["n_clusters"]), values["noise_fraction"]
            )
            write_metric_lines(
                [
                    f"warning: the {split} rows form {int(values['n_clusters'])} cluster(s) with "
                    f"{values['noise_fraction']:.0%} noise; silhouette, davies_bouldin and "
                    f"calinski_harabasz need at least 2 clusters and are not reported; {advice}"
                ]
            )
    facts = {
        "n_clusters": int(results["train"]["n_clusters"]),
        "noise_fraction": results["train"]["noise_fraction"],
        "cluster_sizes": cluster_sizes(labels),
        "noise_handling": NOISE_HANDLING,
        "predicts_new_rows": True,
        "metrics": results,
    }
    return facts, _with_label(pd.DataFrame({CLUSTER_COLUMN: labels}), data)


def _fit_embedding(
    data: UnlabelledData, params: dict[str, Any], estimator: Any, preprocessor: Any, encoded: np.ndarray
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fit PCA or t-SNE; print the embedding's metrics on the training (and validation) rows."""
    seed, algorithm = data.config.seed, data.config.algorithm
    if algorithm == "pca":
        _check_components(params["n_components"], encoded.shape)
        embedding = estimator.fit_transform(encoded)
        reconstruction = estimator.inverse_transform(embedding)
        results, rows = {}, {}
        results["train"], rows["train"] = embedding_metrics(encoded, embedding, reconstruction, seed)
        if data.X_validation is not None:
            X = np.asarray(preprocessor.transform(data.X_validation), dtype=float)
            projected = estimator.transform(X)
            results["validation"], rows["validation"] = embedding_metrics(
                X, projected, estimator.inverse_transform(projected), seed
            )
        facts: dict[str, Any] = {
            "n_components": int(estimator.n_components_),
            "explained_variance_ratio": [float(v) for v in estimator.explained_variance_ratio_],
            "predicts_new_rows": True,
        }
    else:
        embedding = estimator.fit_transform(encoded)
        train, train_rows = embedding_metrics(encoded, embedding, None, seed, metric=params["metric"])
        results, rows = (
            {"train": {**train, "kl_divergence": float(estimator.kl_divergence_)}},
            {"train": train_rows},
        )
        if data.X_validation is not None:
            write_metric_lines(["note: t-SNE has no transform for new points; no validation metrics"])
        facts = {
            "n_components": int(embedding.shape[1]),
            "predicts_new_rows": False,
            "note": NO_TRANSFORM["tsne"],
        }
    for split, values in results.items():
        write_metric_lines(format_metric_lines(split, values))
    write_metric_lines([f"note: trustworthiness computed on {n} {s} rows" for s, n in rows.items()])
    facts.update(metrics=results, trustworthiness_sample_size=rows)
    frame = pd.DataFrame(np.asarray(embedding), columns=component_names(np.asarray(embedding).shape[1]))
    return facts, _with_label(frame, data)


def _check_components(n_components: int | float, shape: tuple[int, ...]) -> None:
    limit = min(shape)
    if isinstance(n_components, int) and n_components > limit:
        raise ValueError(
            f"hyperparameters.n_components ({n_components}) exceeds min(training rows, preprocessed "
            f"features) = {limit}; lower it, or give the fraction of variance to keep (e.g. 0.9)"
        )


def _split(
    frame: pd.DataFrame, feature_types: dict[str, str], label: str | None, channel: str
) -> tuple[pd.DataFrame, pd.Series | None]:
    if label is not None and label not in frame.columns:
        raise ValueError(
            f"label column {label!r} (dataset.target) is not in the {channel} channel; its columns are "
            f"{list(frame.columns)[:20]}"
        )
    missing = [c for c in feature_types if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns {missing} are not in the {channel} channel")
    return frame[list(feature_types)], frame[label].reset_index(drop=True) if label else None


def _with_label(frame: pd.DataFrame, data: UnlabelledData) -> pd.DataFrame:
    """Append the label column (under its own name) when the job has one."""
    if data.labels_train is None or data.config.target is None:
        return frame
    return frame.assign(**{data.config.target: data.labels_train.to_numpy()})


def _metadata(data: UnlabelledData, params: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Describe the model for ``metadata.json`` (the fields of ``program.build_metadata``)."""
    return {
        "algorithm": data.config.algorithm,
        "task": data.config.task,
        "target": data.config.target,
        "feature_names": list(data.feature_types),
        "feature_types": data.feature_types,
        "n_classes": None,
        "n_train": len(data.X_train),
        "n_validation": 0 if data.X_validation is None else len(data.X_validation),
        "hyperparameters": params,
        "preprocessing": data.config.preprocessing,
        "seed": data.config.seed,
        "library_versions": library_versions(),
        "artifact": LABELS_FILE if data.config.task == "clustering" else EMBEDDING_FILE,
        **facts,
    }
