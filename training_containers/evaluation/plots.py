"""Diagnostic plots as PNG files: matplotlib's Agg backend, bare Figures, 100 dpi.

Classification: ``confusion_matrix``, ``roc_curve`` and ``precision_recall`` (one-vs-rest per
class for multiclass; the two curves need probabilities). Regression: ``residuals`` and
``predicted_vs_actual``. Every family we train: ``learning_curve`` (see ``learning``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training_containers.evaluation.learning import Curve
from training_containers.evaluation.scoring import Split

#: Resolution of every PNG, dots per inch.
DPI = 100


def diagnostic_plots(task: str, test: Split, labels: list[str]) -> dict[str, Any]:
    """Draw the task's test-split plots.

    Args:
        task: ``classification`` or ``regression``.
        test: the scored test split.
        labels: label of each class code 0..K-1 (classification).

    Returns:
        Plot name -> matplotlib Figure (not yet saved).
    """
    if task == "regression":
        return {"residuals": _residuals(test), "predicted_vs_actual": _predicted_vs_actual(test)}
    figures = {"confusion_matrix": _confusion_matrix(test, labels)}
    if test.y_proba is not None:
        figures["roc_curve"] = _one_vs_rest(test, labels, "roc")
        figures["precision_recall"] = _one_vs_rest(test, labels, "pr")
    return figures


def learning_curve_plot(curve: Curve) -> Any:
    """Draw a learning curve: one line per split, the best iteration marked when known."""
    figure, ax = _figure()
    for label, values in curve.series.items():
        ax.plot(curve.x, values, marker="o" if len(curve.x) <= 10 else None, markersize=4, label=label)
    if curve.best is not None:
        ax.axvline(curve.best + 1, color="grey", linestyle="--", linewidth=1, label="best iteration")
    ax.set(xlabel=curve.x_label.capitalize(), ylabel=curve.metric, title=curve.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def save(figure: Any, path: Path) -> Path:
    """Lay out and write ``figure`` as a PNG at ``DPI``; return ``path``."""
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    return path


def _figure(width: float = 6.4, height: float = 4.8) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, nothing to close

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots()


def _confusion_matrix(test: Split, labels: list[str]) -> Any:
    from sklearn.metrics import ConfusionMatrixDisplay

    size = min(4.8 + 0.4 * len(labels), 12)
    figure, ax = _figure(size + 1, size)
    ConfusionMatrixDisplay.from_predictions(
        test.y,
        test.y_pred,
        labels=list(range(len(labels))),
        display_labels=labels,
        ax=ax,
        cmap="Blues",
        colorbar=True,
        xticks_rotation=45 if len(labels) > 4 else "horizontal",
    )
    ax.set_title(f"Confusion matrix (test split, n={len(test.y)})")
    return figure


def _one_vs_rest(test: Split, labels: list[str], kind: str) -> Any:
    """ROC (``kind="roc"``) or precision-recall (``"pr"``) curves: the positive class, or one per class."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    display = RocCurveDisplay if kind == "roc" else PrecisionRecallDisplay
    figure, ax = _figure()
    proba = test.y_proba
    assert proba is not None  # only drawn with probabilities
    if len(labels) == 2:
        display.from_predictions(test.y, proba[:, 1], ax=ax, name=f"{labels[1]} (positive class)")
    else:  # one-vs-rest: one curve per class present in the test split
        for code, label in enumerate(labels):
            positives = test.y == code
            if 0 < positives.sum() < len(positives):
                display.from_predictions(positives, proba[:, code], ax=ax, name=f"{label} vs rest")
    suffix = ", one-vs-rest" if len(labels) > 2 else ""
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
        ax.set(
            xlabel="False positive rate", ylabel="True positive rate", title=f"ROC curve (test split{suffix})"
        )
        ax.legend(loc="lower right", fontsize="small")
    else:
        ax.set(xlabel="Recall", ylabel="Precision", title=f"Precision-recall curve (test split{suffix})")
        ax.legend(loc="lower left", fontsize="small")
    return figure


def _residuals(test: Split) -> Any:
    figure, ax = _figure()
    residuals = test.y - test.y_pred
    ax.scatter(test.y_pred, residuals, s=14, alpha=0.6, edgecolors="none")
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set(
        xlabel="Predicted value",
        ylabel="Residual (actual - predicted)",
        title=f"Residuals vs predicted (test split, n={len(residuals)})",
    )
    return figure


def _predicted_vs_actual(test: Split) -> Any:
    figure, ax = _figure(5.6, 5.6)
    ax.scatter(test.y, test.y_pred, s=14, alpha=0.6, edgecolors="none")
    low = float(min(np.min(test.y), np.min(test.y_pred)))
    high = float(max(np.max(test.y), np.max(test.y_pred)))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect prediction")
    ax.set(xlabel="Actual value", ylabel="Predicted value", title="Predicted vs actual (test split)")
    ax.legend(loc="upper left", fontsize="small")
    return figure
