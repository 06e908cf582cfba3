"""Evaluation of clustering models (k-means, DBSCAN): internal quality on held-out rows.

The judge reads the test split's ``silhouette``, ``davies_bouldin`` and ``calinski_harabasz``
(``common.metrics.clustering_metrics``): the model labels the test rows (k-means: nearest
centre; DBSCAN: ``InductiveDBSCAN.predict``, the nearest core sample within ``eps``, else noise)
and the scores measure how well those rows separate in the preprocessed feature space. Noise
rows are left out of the three scores; ``noise_fraction`` is their share. The training rows are
scored with their own labels (``labels_``, as the training job printed them).

A clustering with fewer than 2 clusters among the training or test rows cannot be scored: the
job fails with a message naming the hyperparameters to change. When the spec names a label
column, the adjusted Rand index between clusters and labels is added to ``details``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from training_containers.common.contract import write_metric_lines
from training_containers.common.metrics import clustering_metrics, format_metric_lines
from training_containers.common.unsupervised import NOISE_HANDLING, cluster_sizes, clustering_advice
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
#: Scores compared between train and test in ``gaps``; Calinski-Harabasz grows with the number
#: of rows, so a train-test difference of it means nothing and it is left out.
GAP_SCORES = ("silhouette", "davies_bouldin")


def evaluate(contract: ProcessingContract, config: EvaluationConfig) -> dict[str, Any]:
    """Label and score the train, validation and test rows; draw the plots; save the baseline.

    Returns:
        The report fields of this family: ``metrics`` (test), ``validation_metrics``,
        ``train_metrics`` (each: ``silhouette``, ``davies_bouldin``, ``calinski_harabasz``,
        ``n_clusters``, ``noise_fraction``), ``gaps`` (train minus test silhouette and
        Davies-Bouldin), ``n_test``, ``n_validation``, ``n_train``, ``plots`` (``clusters``:
        the test rows in a PCA projection coloured by cluster; ``cluster_sizes``),
        ``cluster_sizes`` (training rows per label, ``"-1"`` is noise), ``details`` (flat
        figures: clusters, noise fraction and adjusted Rand index per split), ``notes``,
        ``metrics_split`` (``test``), ``algorithm`` and ``baseline``.

    Raises:
        FileNotFoundError: the model or a required split is missing.
        ValueError: fewer than 2 clusters among the training or test rows (saying which
            hyperparameters to change), a requested metric not produced, or rows that do not
            fit the model.
    """
    model = load_unlabelled_model(contract.model_dir, config)
    splits = {name: read_rows(contract, model, name, required=name != "validation") for name in SPLITS}
    rows = {name: r for name, r in splits.items() if r is not None}
    clusters = {name: _clusters(model, r) for name, r in rows.items()}
    metrics = {name: clustering_metrics(r.Xt, clusters[name], config.seed) for name, r in rows.items()}
    for name in ("train", "test"):
        _check_scored(model, name, metrics[name])
    check_requested(
        config.metrics,
        metrics["test"],
        "test",
        "clustering produces silhouette, davies_bouldin and calinski_harabasz",
    )
    for name in ("test", "validation", "train"):
        if name in metrics:
            write_metric_lines(format_metric_lines(name, metrics[name]))
    sizes = cluster_sizes(clusters["train"])
    return {
        "metrics": metrics["test"],
        "validation_metrics": metrics.get("validation", {}),
        "train_metrics": metrics["train"],
        "gaps": {m: metrics["train"][m] - metrics["test"][m] for m in GAP_SCORES},
        "n_test": len(rows["test"].Xt),
        "n_validation": len(rows["validation"].Xt) if "validation" in rows else 0,
        "n_train": len(rows["train"].Xt),
        "plots": _plots(contract, rows, clusters, sizes, config.seed),
        "cluster_sizes": sizes,
        "details": _details(model, rows, clusters, metrics),
        "notes": _notes(model, metrics),
        "metrics_split": "test",
        "algorithm": model.algorithm,
        "baseline": save_baseline(contract, model, rows["train"].frame),
    }


def _clusters(model: UnlabelledModel, rows: Rows) -> np.ndarray:
    """The training rows' own labels (``labels_``); other splits through ``predict``."""
    own = getattr(model.estimator, "labels_", None)
    if rows.name == "train" and own is not None and len(own) == len(rows.Xt):
        return np.asarray(own, dtype=int)
    try:
        return np.asarray(model.estimator.predict(rows.Xt), dtype=int)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"the model failed to label the {rows.name} rows ({type(err).__name__}: {err})"
        ) from err


def _check_scored(model: UnlabelledModel, split: str, values: dict[str, float]) -> None:
    """Raise when the split's rows form fewer than 2 clusters (the scores are undefined)."""
    if "silhouette" in values:
        return
    n, noise = int(values["n_clusters"]), values["noise_fraction"]
    advice = clustering_advice(model.algorithm, model.metadata.get("hyperparameters") or {}, n, noise)
    raise ValueError(
        f"{model.algorithm or 'the model'} put the {split} rows in {n} cluster(s) with {noise:.0%} noise; "
        f"silhouette, davies_bouldin and calinski_harabasz need at least 2 clusters (and more "
        f"clustered rows than clusters); {advice}"
    )


def _plots(
    contract: ProcessingContract,
    rows: dict[str, Rows],
    clusters: dict[str, np.ndarray],
    sizes: dict[str, int],
    seed: int,
) -> dict[str, str]:
    """Draw the test rows in a 2-D PCA projection and the training cluster sizes."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window, whatever the environment says
    from training_containers.evaluation.plots import save
    from training_containers.evaluation.unsupervised_plots import cluster_scatter, cluster_size_bars

    train, test = rows["train"].Xt, rows["test"].Xt
    if train.shape[1] >= 2:
        projection = PCA(n_components=2, random_state=seed).fit(train)
        points, axes = projection.transform(test), ("principal component 1", "principal component 2")
    else:
        points, axes = np.column_stack([test[:, 0], np.zeros(len(test))]), ("feature 1 (preprocessed)", "")
    figures = {
        "clusters": cluster_scatter(
            points,
            clusters["test"],
            f"Test rows by cluster, PCA projection of the training space (n={len(test)})",
            axes,
        ),
        "cluster_sizes": cluster_size_bars(sizes, f"Training rows per cluster (n={len(rows['train'].Xt)})"),
    }
    relative = {name: f"plots/{name}.png" for name in figures}
    for name, figure in figures.items():
        save(figure, contract.output(relative[name]))
    return relative


def _details(
    model: UnlabelledModel,
    rows: dict[str, Rows],
    clusters: dict[str, np.ndarray],
    metrics: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """Flat figures for the report's table: clusters, noise per split, agreement with the labels."""
    details: dict[str, Any] = {"n_clusters": int(metrics["train"]["n_clusters"])}
    details.update({f"noise_fraction_{name}": values["noise_fraction"] for name, values in metrics.items()})
    for name, r in rows.items():  # noise (-1) counts as one more cluster in the Rand index
        if r.labels is not None and r.labels.notna().all():
            details["label_column"] = model.label
            details[f"adjusted_rand_index_{name}"] = float(
                adjusted_rand_score(r.labels.astype(str), clusters[name])
            )
    return details


def _notes(model: UnlabelledModel, metrics: dict[str, dict[str, float]]) -> list[str]:
    notes = [
        "metrics are the test rows' silhouette, Davies-Bouldin and Calinski-Harabasz in the "
        "preprocessed feature space, with the clusters the model assigns to them",
        NOISE_HANDLING,
    ]
    if model.algorithm == "dbscan":
        notes.append(
            "DBSCAN labels a new row with the cluster of its nearest core sample within eps, else noise: "
            f"{metrics['test']['noise_fraction']:.0%} of the test rows and "
            f"{metrics['train']['noise_fraction']:.0%} of the training rows are noise, left out of the scores"
        )
    if "validation" in metrics and "silhouette" not in metrics["validation"]:
        notes.append("the validation rows form fewer than 2 clusters: no validation scores")
    return notes
