"""Suggestions for clustering, dimensionality reduction and reinforcement learning. Pure.

One suggestion per miss, from the thresholded metrics that failed and the report's figures:

* **Clustering** (``cluster_structure``): k-means clusters that are not well separated usually
  mean k differs from the data's natural number of groups (silhouette peaks there; Rousseeuw
  1987), so a smaller and a larger ``n_clusters`` are worth comparing, with a patch to the one
  closer to the silhouette rule of thumb (k = 2 is the smallest; halving a large k first). For
  DBSCAN the density parameters decide: a high noise fraction (above 0.2, a heuristic) asks for
  a larger ``eps`` (× 1.5), otherwise merged clusters ask for a smaller one (× 0.7).
* **Dimensionality reduction** (``embedding``): PCA keeping too little variance gets
  ``n_components`` set to the threshold itself (scikit-learn's PCA keeps as many components as
  that fraction of variance needs); a t-SNE with low trustworthiness gets a smaller perplexity
  (÷ 2, at least 5), since trustworthiness measures local neighbourhoods (Venna & Kaski 2001).
* **Control** (``training_budget``): a policy whose training return misses the threshold needs
  more environment steps: ``environment.total_timesteps`` × 2; one that trains well but plays
  worse greedily is reported with both figures and no patch.
"""

from __future__ import annotations

from typing import Any

from mcp_server.core.judge.remedies import Hyperparameters, within_range
from mcp_server.core.judge.suggestion import Suggestion, fmt, train_value
from mcp_server.core.models import EvaluationReport
from mcp_server.core.spec.catalog import LOWER_IS_BETTER

#: DBSCAN noise fraction above which ``eps`` is raised rather than lowered (heuristic).
NOISE_FRACTION_HIGH = 0.2


def family_suggestion(
    task: str,
    failed: list[str],
    thresholds: dict[str, float],
    report: EvaluationReport,
    algorithm: str | None,
    current: Hyperparameters,
) -> Suggestion | None:
    """Return the family's suggestion for the first failed metric that was measured, or None.

    Args:
        task: ``clustering``, ``dimensionality_reduction`` or ``control``.
        failed: thresholded metrics that missed, in threshold order.
        thresholds: metric -> threshold (floor, or ceiling for ``LOWER_IS_BETTER`` metrics).
        report: the evaluation report (``details`` may hold ``noise_fraction``, ``env_steps``).
        algorithm: the spec's algorithm.
        current: the hyperparameters in effect (``remedies.current_hyperparameters``).
    """
    measured = [m for m in failed if m in report.metrics]
    if not measured:
        return None
    metric = measured[0]
    value, threshold = report.metrics[metric], thresholds[metric]
    sign = ">" if metric in LOWER_IS_BETTER else "<"
    figure = f"{metric} {fmt(value)} {sign} threshold {threshold:g}"
    if task == "clustering":
        return _clustering(metric, value, figure, report, algorithm, current)
    if task == "dimensionality_reduction":
        return _embedding(metric, value, threshold, figure, algorithm, current)
    return _control(metric, value, threshold, figure, report)


def _clustering(
    metric: str,
    value: float,
    figure: str,
    report: EvaluationReport,
    algorithm: str | None,
    current: Hyperparameters,
) -> Suggestion:
    if algorithm == "dbscan":
        noise = float(report.details.get("noise_fraction", 0.0))
        factor = 1.5 if noise > NOISE_FRACTION_HIGH else 0.7
        patch = within_range(algorithm, current, {"eps": round(current["eps"] * factor, 4)})
        why = (
            f"{noise:.0%} of the rows are noise, so the neighbourhood is too small"
            if noise > NOISE_FRACTION_HIGH
            else "dense groups are probably merged into one cluster"
        )
        message = f"The clusters are not well separated: {why}; change eps {current['eps']} → " + (
            f"{patch['eps']} (and compare min_samples {current['min_samples']})" if patch else "a new value"
        )
    else:
        k = int(current.get("n_clusters", 8))
        proposed = max(2, k // 2) if k > 4 else k + 1
        patch = within_range(algorithm, current, {"n_clusters": proposed}) if algorithm == "kmeans" else {}
        sizes = report.cluster_sizes or {}
        message = (
            f"The clusters are not well separated ({len(sizes) or k} clusters): k probably differs from "
            f"the data's natural number of groups; compare n_clusters {k} with {proposed} and with other "
            "values (the silhouette is highest near the natural k)"
        )
    return Suggestion(
        kind="cluster_structure", message=message, figure=figure, metric=metric, value=value, patch=patch
    )


def _embedding(
    metric: str, value: float, threshold: float, figure: str, algorithm: str | None, current: Hyperparameters
) -> Suggestion:
    patch: dict[str, Any] = {}
    if algorithm == "pca" and metric == "explained_variance_ratio" and 0 < threshold < 1:
        patch = within_range(algorithm, current, {"n_components": threshold})
        message = (
            f"The kept components explain too little variance: set n_components to {threshold:g} so "
            "PCA keeps as many components as that fraction of the variance needs"
        )
    elif algorithm == "tsne":
        perplexity = float(current.get("perplexity", 30.0))
        patch = within_range(algorithm, current, {"perplexity": max(5.0, perplexity / 2)})
        message = (
            "The embedding does not keep local neighbourhoods well: lower the perplexity "
            f"{perplexity:g} → {max(5.0, perplexity / 2):g} (fewer effective neighbours)"
        )
    else:
        message = "The embedding misses its threshold: keep more components or scale the features"
    return Suggestion(
        kind="embedding", message=message, figure=figure, metric=metric, value=value, patch=patch
    )


def _control(
    metric: str,
    value: float,
    threshold: float,
    figure: str,
    report: EvaluationReport,
) -> Suggestion:
    trained = train_value(report, metric)
    steps = report.details.get("env_steps")
    if trained is not None and metric not in LOWER_IS_BETTER and trained >= threshold:
        message = (
            f"The policy reached {fmt(trained)} while training but {fmt(value)} in greedy evaluation: "
            "training returns include exploration and lucky episodes; evaluate more episodes or train "
            "longer so the policy settles"
        )
        return Suggestion(kind="training_budget", message=message, figure=figure, metric=metric, value=value)
    budget = int(report.details.get("total_timesteps") or steps or 0)
    section = {"environment": {"total_timesteps": 2 * budget}} if budget else {}
    message = (
        "The policy did not learn enough in its training budget"
        + (f" ({steps} environment steps)" if steps else "")
        + (f": double environment.total_timesteps to {2 * budget}" if budget else ": train for more steps")
    )
    return Suggestion(
        kind="training_budget",
        message=message,
        figure=figure if trained is None else f"{figure}; training {metric} {fmt(trained)}",
        metric=metric,
        value=value,
        section_patch=section,
    )
