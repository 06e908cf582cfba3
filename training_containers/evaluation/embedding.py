"""Evaluation of dimensionality reduction models (PCA, t-SNE).

PCA transforms new rows, so the judge reads the test split: ``explained_variance_ratio`` (the
share of the test rows' variance that the kept components reconstruct) and
``trustworthiness`` (how well the test rows' nearest neighbours survive the projection), both
from ``common.metrics.embedding_metrics``. t-SNE has no transform for new points: its figures
(``trustworthiness`` and the final ``kl_divergence`` of the fit) and its plot cover the
training rows it embedded, and the report says so (``metrics_split: train``, ``notes``).
Trustworthiness is computed on at most ``common.metrics.TRUSTWORTHINESS_MAX_ROWS`` rows per
split (a seeded sample); ``details.trustworthiness_rows_<split>`` records how many.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training_containers.common.contract import write_metric_lines
from training_containers.common.metrics import (
    TRUSTWORTHINESS_NEIGHBORS,
    embedding_metrics,
    format_metric_lines,
)
from training_containers.common.unsupervised import NO_TRANSFORM
from training_containers.evaluation.processing import EvaluationConfig, ProcessingContract
from training_containers.evaluation.unlabelled import (
    Rows,
    UnlabelledModel,
    check_requested,
    load_unlabelled_model,
    read_rows,
    save_baseline,
)

SPLITS = ("train", "validation", "test")


def evaluate(contract: ProcessingContract, config: EvaluationConfig) -> dict[str, Any]:
    """Score the embedding model, draw its plots and (PCA) save the drift baseline.

    Returns:
        The report fields of this family: ``metrics`` (PCA: the test split's
        ``explained_variance_ratio`` and ``trustworthiness``; t-SNE: the training rows'
        ``trustworthiness`` and ``kl_divergence``), ``validation_metrics``, ``train_metrics``,
        ``gaps``, ``n_test``, ``n_validation``, ``n_train``, ``plots`` (``embedding``: the
        scored rows in the first two components, coloured by the label column; ``scree`` for
        PCA), ``details`` (explained variance ratio per component, trustworthiness sample
        sizes and neighbours), ``notes``, ``metrics_split``,
        ``algorithm`` and ``baseline`` (None for t-SNE, which is never served).

    Raises:
        FileNotFoundError: the model or a required split is missing.
        ValueError: a requested metric not produced (e.g. explained_variance_ratio of t-SNE),
            the model's embedding does not match the train split, or rows that do not fit the
            model.
    """
    model = load_unlabelled_model(contract.model_dir, config)
    if not hasattr(model.estimator, "transform"):
        return _evaluate_training_rows(contract, config, model)
    splits = {name: read_rows(contract, model, name, required=name != "validation") for name in SPLITS}
    rows = {name: r for name, r in splits.items() if r is not None}
    embeddings = {name: np.asarray(model.estimator.transform(r.Xt), dtype=float) for name, r in rows.items()}
    metrics, sample_sizes = {}, {}
    for name, r in rows.items():
        inverse = getattr(model.estimator, "inverse_transform", None)
        reconstruction = inverse(embeddings[name]) if inverse is not None else None
        metrics[name], sample_sizes[name] = embedding_metrics(
            r.Xt, embeddings[name], reconstruction, config.seed
        )
    check_requested(
        config.metrics,
        metrics["test"],
        "test",
        "PCA produces explained_variance_ratio and trustworthiness (trustworthiness needs at least 3 rows)",
    )
    _print(metrics)
    ratios = [float(v) for v in getattr(model.estimator, "explained_variance_ratio_", [])]
    plots = _plots(contract, model.algorithm, rows["test"], embeddings["test"], ratios, "test")
    return {
        "metrics": metrics["test"],
        "validation_metrics": metrics.get("validation", {}),
        "train_metrics": metrics["train"],
        "gaps": {
            m: metrics["train"][m] - metrics["test"][m] for m in metrics["test"] if m in metrics["train"]
        },
        "n_test": len(rows["test"].Xt),
        "n_validation": len(rows["validation"].Xt) if "validation" in rows else 0,
        "n_train": len(rows["train"].Xt),
        "plots": plots,
        "details": {
            "n_components": embeddings["train"].shape[1],
            "explained_variance_ratio_per_component": ratios,
            "explained_variance_ratio_cumulative": [float(v) for v in np.cumsum(ratios)],
            **_trustworthiness_details(sample_sizes),
        },
        "notes": [
            "explained_variance_ratio on a split is the share of its rows' variance (preprocessed "
            "features) that the kept components reconstruct; on the training rows it is the sum of "
            "the components' explained variance ratios"
        ],
        "metrics_split": "test",
        "algorithm": model.algorithm,
        "baseline": save_baseline(contract, model, rows["train"].frame),
    }


def _evaluate_training_rows(
    contract: ProcessingContract, config: EvaluationConfig, model: UnlabelledModel
) -> dict[str, Any]:
    """t-SNE: score the embedding of the training rows that the model holds (``embedding_``)."""
    train = read_rows(contract, model, "train", required=True)
    assert train is not None  # required=True raises instead
    embedding = getattr(model.estimator, "embedding_", None)
    if embedding is None or len(embedding) != len(train.Xt):
        size = "no embedding" if embedding is None else f"an embedding of {len(embedding)} rows"
        raise ValueError(
            f"the {model.algorithm or 'model'} model holds {size} but the train split has {len(train.Xt)} "
            "rows; evaluate it with the dataset version it was trained on"
        )
    embedding = np.asarray(embedding, dtype=float)
    metric = str(getattr(model.estimator, "metric", "euclidean"))
    values, sample_size = embedding_metrics(train.Xt, embedding, None, config.seed, metric=metric)
    divergence = getattr(model.estimator, "kl_divergence_", None)
    if divergence is not None:
        values["kl_divergence"] = float(divergence)
    note = NO_TRANSFORM.get(model.algorithm, f"{model.algorithm} has no transform for new points")
    check_requested(config.metrics, values, "train", f"{note}; it produces trustworthiness and kl_divergence")
    _print({"train": values})
    return {
        "metrics": values,
        "validation_metrics": {},
        "train_metrics": values,
        "gaps": {},
        "n_test": 0,
        "n_validation": 0,
        "n_train": len(train.Xt),
        "plots": _plots(contract, model.algorithm, train, embedding, [], "training"),
        "details": {"n_components": embedding.shape[1], **_trustworthiness_details({"train": sample_size})},
        "notes": [f"{note}; the validation and test splits are not used"],
        "metrics_split": "train",
        "algorithm": model.algorithm,
        "baseline": None,
    }


def _print(metrics: dict[str, dict[str, float]]) -> None:
    for name in ("test", "validation", "train"):
        if name in metrics:
            write_metric_lines(format_metric_lines(name, metrics[name]))


def _trustworthiness_details(sample_sizes: dict[str, int]) -> dict[str, Any]:
    """Rows the trustworthiness was computed on, per split, and its neighbourhood size k."""
    return {
        **{f"trustworthiness_rows_{name}": n for name, n in sample_sizes.items()},
        "trustworthiness_neighbors": TRUSTWORTHINESS_NEIGHBORS,
    }


def _plots(
    contract: ProcessingContract,
    algorithm: str,
    rows: Rows,
    embedding: np.ndarray,
    ratios: list[float],
    which: str,
) -> dict[str, str]:
    """Draw the embedding of ``rows`` (and the scree plot when there are variance ratios)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window, whatever the environment says
    from training_containers.evaluation.plots import save
    from training_containers.evaluation.unsupervised_plots import embedding_scatter, scree

    name = {"pca": "PCA", "tsne": "t-SNE"}.get(algorithm, algorithm)
    title = f"{name} embedding of the {which} rows (n={len(embedding)})"
    figures = {"embedding": embedding_scatter(embedding, rows.labels, title)}
    if ratios:
        figures["scree"] = scree(ratios, f"Explained variance ratio per component ({sum(ratios):.1%} kept)")
    relative = {name: f"plots/{name}.png" for name in figures}
    for name, figure in figures.items():
        save(figure, contract.output(relative[name]))
    return relative
