"""Plots of clustering and embedding models, as matplotlib Figures (saved by ``plots.save``).

- ``cluster_scatter``: rows in a 2-D projection, one colour per cluster, noise as grey crosses;
- ``cluster_size_bars``: rows per cluster label;
- ``embedding_scatter``: rows in the first two embedding components, coloured by the label
  column when there is one (a legend for up to ``MAX_LEGEND`` categories, else a colour bar);
- ``scree``: explained variance ratio per principal component, with the cumulative share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training_containers.common.metrics import NOISE_LABEL

#: Most distinct label values drawn as categories with a legend; more numeric values get a colour bar.
MAX_LEGEND = 20


def cluster_scatter(points: np.ndarray, clusters: np.ndarray, title: str, axis_names: tuple[str, str]) -> Any:
    """Draw rows coloured by cluster.

    Args:
        points: 2-D coordinates of the rows, shape (n, 2).
        clusters: cluster label of each row, shape (n,); -1 (noise) is drawn as grey crosses.
        title: the figure's title.
        axis_names: x and y axis labels.

    Returns:
        A matplotlib Figure.
    """
    figure, ax = _figure()
    clusters = np.asarray(clusters, dtype=int)
    cmap = _cmap(len(np.unique(clusters[clusters != NOISE_LABEL])))
    for i, cluster in enumerate(np.unique(clusters[clusters != NOISE_LABEL])):
        rows = clusters == cluster
        ax.scatter(
            points[rows, 0], points[rows, 1], s=16, alpha=0.8, color=cmap(i), label=f"cluster {cluster}"
        )
    noise = clusters == NOISE_LABEL
    if noise.any():
        ax.scatter(points[noise, 0], points[noise, 1], s=18, marker="x", color="grey", label="noise")
    ax.set(xlabel=axis_names[0], ylabel=axis_names[1], title=title)
    if len(np.unique(clusters)) <= MAX_LEGEND:
        ax.legend(fontsize="small", loc="best")
    return figure


def cluster_size_bars(sizes: dict[str, int], title: str) -> Any:
    """Draw a bar per cluster label (``"-1"``, noise, in grey) with its number of rows."""
    figure, ax = _figure()
    names = list(sizes)
    colours = ["grey" if name == str(NOISE_LABEL) else "tab:blue" for name in names]
    bars = ax.bar(
        ["noise" if n == str(NOISE_LABEL) else n for n in names], list(sizes.values()), color=colours
    )
    ax.bar_label(bars, fontsize="small")
    ax.set(xlabel="Cluster", ylabel="Rows", title=title)
    return figure


def embedding_scatter(embedding: np.ndarray, labels: pd.Series | None, title: str) -> Any:
    """Draw rows at their first two embedding coordinates, coloured by the label column.

    Args:
        embedding: coordinates, shape (n, k); with k = 1 the rows are drawn on a line (y = 0).
        labels: the label column's values (n,), or None (one colour).
        title: the figure's title.

    Returns:
        A matplotlib Figure.
    """
    figure, ax = _figure()
    x = embedding[:, 0]
    y = embedding[:, 1] if embedding.shape[1] > 1 else np.zeros(len(x))
    if labels is None:
        ax.scatter(x, y, s=12, alpha=0.7)
    elif pd.api.types.is_numeric_dtype(labels) and labels.nunique() > MAX_LEGEND:
        points = ax.scatter(x, y, s=12, alpha=0.8, c=labels.to_numpy(dtype=float), cmap="viridis")
        figure.colorbar(points, ax=ax, label=str(labels.name))
    else:
        categories = sorted(labels.dropna().unique(), key=str)[:MAX_LEGEND]
        cmap = _cmap(len(categories))
        for i, category in enumerate(categories):
            rows = (labels == category).to_numpy()
            ax.scatter(x[rows], y[rows], s=12, alpha=0.8, color=cmap(i), label=str(category))
        unlabelled = labels.isna().to_numpy()
        if unlabelled.any():
            ax.scatter(x[unlabelled], y[unlabelled], s=12, alpha=0.6, color="grey", label="(missing)")
        ax.legend(title=str(labels.name), fontsize="small", loc="best", markerscale=1.5)
    ax.set(xlabel="component 1", ylabel="component 2" if embedding.shape[1] > 1 else "", title=title)
    return figure


def scree(ratios: list[float], title: str) -> Any:
    """Draw the explained variance ratio of each component (bars) and its running sum (line).

    Args:
        ratios: explained variance ratio per component, fractions, largest first.
        title: the figure's title.

    Returns:
        A matplotlib Figure.
    """
    figure, ax = _figure()
    positions = np.arange(1, len(ratios) + 1)
    from matplotlib.ticker import MaxNLocator

    ax.bar(positions, ratios, color="tab:blue", label="per component")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.plot(positions, np.cumsum(ratios), color="tab:orange", marker="o", markersize=3, label="cumulative")
    ax.set(xlabel="Principal component", ylabel="Explained variance ratio", ylim=(0, 1.05), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center right")
    return figure


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, nothing to close

    figure = Figure(figsize=(6.4, 4.8))
    return figure, figure.subplots()


def _cmap(n: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"]
