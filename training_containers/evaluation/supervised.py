"""Evaluation of classification and regression models (the supervised family).

Scores the model on the train, validation and test splits, draws the diagnostic plots and the
learning curve, computes SHAP and fairness when the configuration asks for them, and saves the
training split's drift baseline. ``evaluate`` returns the family's part of ``report.json`` (see
``evaluate``'s module docstring for the fields).
"""

from __future__ import annotations

from typing import Any

from training_containers.common.contract import write_metric_lines
from training_containers.common.metrics import format_metric_lines
from training_containers.evaluation.baseline import build_baseline, feature_kinds
from training_containers.evaluation.learning import Curve, learning_curve
from training_containers.evaluation.processing import EvaluationConfig, ProcessingContract, say, write_json
from training_containers.evaluation.scoring import (
    Model,
    Split,
    check_requested,
    class_counts,
    count_classes,
    gaps,
    load_model,
    score_split,
    split_metrics,
)

SPLITS = ("train", "validation", "test")
BASELINE = "baseline/baseline.json"
SHAP_PLOT = "plots/shap_summary.png"


def evaluate(contract: ProcessingContract, config: EvaluationConfig) -> dict[str, Any]:
    """Evaluate the mounted supervised model on the mounted splits; write plots and baseline.

    Returns:
        The report fields of this family: ``metrics`` (test), ``validation_metrics``,
        ``train_metrics``, ``gaps``, ``n_test``, ``n_validation``, ``n_train``,
        ``class_counts``, ``plots``, ``learning_curve``, ``baseline``, ``shap``, ``fairness``.

    Raises:
        FileNotFoundError: the model or a required split is missing.
        ValueError: a requested metric cannot be computed, or the rows do not fit the model.
    """
    model = load_model(contract.model_dir, config)
    frames = _read_splits(contract, config)
    n_classes = count_classes(config, model, [f for f in frames.values() if f is not None])
    splits = {name: score_split(model, f, name, config.task) for name, f in frames.items() if f is not None}
    metrics = {name: split_metrics(split, config.task, n_classes) for name, split in splits.items()}
    check_requested(config.metrics, metrics["test"])
    for name in ("test", "validation", "train"):
        if name in metrics:
            write_metric_lines(format_metric_lines(name, metrics[name]))
    labels = config.class_labels or [str(code) for code in range(n_classes or 0)]
    curve = learning_curve(model, splits, config.task, n_classes, config.seed)
    plots = _plots(contract, splits, config, labels, curve)
    shap = _shap(contract, model, splits, config, labels)
    if shap is not None:
        plots["shap_summary"] = SHAP_PLOT
    return {
        "metrics": metrics["test"],
        "validation_metrics": metrics.get("validation", {}),
        "train_metrics": metrics["train"],
        "gaps": gaps(metrics["train"], metrics["test"]),
        "n_test": len(splits["test"].y),
        "n_validation": len(splits["validation"].y) if "validation" in splits else 0,
        "n_train": len(splits["train"].y),
        "class_counts": class_counts(splits["train"].y, labels, n_classes) if n_classes else None,
        "plots": plots,
        "learning_curve": curve.to_dict() if curve is not None else None,
        "baseline": _baseline(contract, model, frames["train"], config.task, config.class_labels),
        "algorithm": model.metadata.get("algorithm", ""),
        "shap": shap,
        "fairness": _fairness(config, splits["test"], n_classes),
    }


def _read_splits(contract: ProcessingContract, config: EvaluationConfig) -> dict[str, Any]:
    """Read the splits (validation optional); check the sensitive column before any work."""
    frames = {name: contract.read_split(name, required=name != "validation") for name in SPLITS}
    if config.fairness is not None:
        from training_containers.evaluation.fairness import check_column

        check_column(config.fairness, frames["test"])
    return frames


def _plots(
    contract: ProcessingContract,
    splits: dict[str, Split],
    config: EvaluationConfig,
    labels: list[str],
    curve: Curve | None,
) -> dict[str, str]:
    """Draw and save every plot; return plot name -> path relative to ``output/``."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window, whatever the environment says
    from training_containers.evaluation.plots import diagnostic_plots, learning_curve_plot, save

    figures = diagnostic_plots(config.task, splits["test"], labels)
    if curve is None:
        say("no learning curve for this estimator family")
    else:
        figures["learning_curve"] = learning_curve_plot(curve)
    relative = {name: f"plots/{name}.png" for name in figures}
    for name, figure in figures.items():
        save(figure, contract.output(relative[name]))
    return relative


def _baseline(
    contract: ProcessingContract, model: Model, train: Any, task: str, class_labels: list[str] | None
) -> str:
    """Write the drift baseline; a classifier's target is described by its class labels.

    The endpoint answers with class labels (``predictor.py``), so the prediction-drift baseline
    uses them too, and records them in code order (``class_labels``).
    """
    kinds = feature_kinds(train, model.features, model.feature_types)
    target_kind = "numeric" if task == "regression" else "categorical"
    if class_labels and model.target in train.columns:
        codes = train[model.target].astype(int)
        train = train.assign(**{model.target: codes.map(dict(enumerate(class_labels)))})
    baseline = build_baseline(train, kinds, model.target, target_kind)
    if class_labels:
        baseline["class_labels"] = list(class_labels)
    write_json(contract, BASELINE, baseline)
    return BASELINE


def _shap(
    contract: ProcessingContract,
    model: Model,
    splits: dict[str, Split],
    config: EvaluationConfig,
    labels: list[str],
) -> dict[str, Any] | None:
    if config.explainability != "shap":
        return None
    from training_containers.evaluation.explain import explain

    path = contract.output(SHAP_PLOT)
    summary = explain(
        model, splits["train"], splits["test"], labels or None, config.shap_max_rows, config.seed, path
    )
    say(f"shap {summary['explainer']}: {summary['sample_size']} rows in {summary['duration_s']} s")
    return summary


def _fairness(config: EvaluationConfig, test: Split, n_classes: int | None) -> dict[str, Any] | None:
    if config.fairness is None:
        return None
    from training_containers.evaluation.fairness import fairness_report

    return fairness_report(config.fairness, test, config.task, n_classes)
