"""SHAP explanations of the model on the preprocessed test rows (imported only when asked for).

The explainer fits the estimator:

- ``shap.TreeExplainer`` for XGBoost and scikit-learn forests (exact, path-dependent; XGBoost
  explains the margin, i.e. log-odds for classification);
- ``shap.LinearExplainer`` for linear and logistic regression (log-odds), with an
  ``Independent`` masker over up to ``BACKGROUND_ROWS`` training rows;
- otherwise ``shap.PermutationExplainer`` on ``predict_proba`` (or ``predict``) with
  ``MODEL_AGNOSTIC_BACKGROUND`` sampled training rows, explaining at most
  ``MODEL_AGNOSTIC_ROWS`` rows. A PyTorch network (skorch) is called with one forward pass per
  batch the explainer asks for (``batch_predict``): skorch's own ``predict_proba`` goes row by
  row through a ``DataLoader``, about 40 microseconds a row, which made 50 rows take 50 s.

Global importance is the mean absolute SHAP value of each transformed feature over the explained
rows (Lundberg & Lee 2017; shap's bar summary). Multiclass: the mean over classes of the
per-class means. Binary models that return one column per class (forests) are explained on the
positive class (code 1).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from training_containers.evaluation.plots import DPI
from training_containers.evaluation.scoring import Model, Split

#: Features listed in the report and drawn in the summary plot.
TOP_FEATURES = 10
#: Background rows of the linear and model-agnostic explainers.
BACKGROUND_ROWS = 100
#: Most rows the (slow) model-agnostic explainer explains, and its background rows: it calls the
#: model on rows x (2 x features + 1) x background inputs.
MODEL_AGNOSTIC_ROWS = 50
MODEL_AGNOSTIC_BACKGROUND = 50


def explain(
    model: Model, train: Split, test: Split, labels: list[str] | None, max_rows: int, seed: int, path: Path
) -> dict[str, Any]:
    """Explain up to ``max_rows`` test rows, draw the summary plot, rank the features.

    Args:
        model: the trained model.
        train: the scored training split (background rows).
        test: the scored test split (rows explained; sampled without replacement when larger).
        labels: class labels (legend of the multiclass plot), or None.
        max_rows: most rows explained.
        seed: seeds the row and background sampling.
        path: where the summary PNG goes.

    Returns:
        The ``ShapSummary`` fields: explainer, sample_size, background_size (None for trees),
        top_features (feature, mean_abs_shap; most important first), duration_s (seconds).
    """
    import shap

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    kind = _explainer_kind(model.estimator)
    if kind == "permutation" and "torch" in sys.modules:
        # thousands of small-batch forward passes: thread hand-offs cost more than they give,
        # and on a busy machine spinning OpenMP threads slow them several-fold (PyTorch's CPU
        # performance guide: small inference batches run best single-threaded)
        sys.modules["torch"].set_num_threads(1)
    limit = max_rows if kind != "permutation" else min(max_rows, MODEL_AGNOSTIC_ROWS)
    rows = _sample(test.Xt, limit, rng)
    values, background_size = _shap_values(shap, kind, model.estimator, train.Xt, rows, rng)
    if values.ndim == 3 and values.shape[2] == 2:
        values = values[:, :, 1]  # binary with one column per class: the positive class
    names = feature_names(model, rows.shape[1])
    importance = np.abs(values).mean(axis=0)
    if importance.ndim == 2:
        importance = importance.mean(axis=1)  # multiclass: mean over classes
    order = np.argsort(-importance, kind="stable")[:TOP_FEATURES]
    _summary_plot(shap, values, rows, names, labels, kind, path)
    return {
        "explainer": kind,
        "sample_size": len(rows),
        "background_size": background_size,
        "top_features": [{"feature": names[i], "mean_abs_shap": float(importance[i])} for i in order],
        "duration_s": round(time.perf_counter() - started, 3),
    }


def feature_names(model: Model, width: int) -> list[str]:
    """Names of the transformed features from ``get_feature_names_out``.

    The ColumnTransformer's ``numeric__``/``categorical__`` prefixes are dropped when the names
    stay unique; ``x0..x{width-1}`` when the preprocessing cannot name its outputs.
    """
    try:
        names = [str(n) for n in model.preprocessor.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):  # no preprocessor, or a step without names
        names = list(model.features) if model.preprocessor is None else []
    if len(names) != width:
        return [f"x{i}" for i in range(width)]
    short = [n.split("__", 1)[-1] for n in names]
    return short if len(set(short)) == len(short) else names


def _explainer_kind(estimator: Any) -> str:
    module = type(estimator).__module__
    if module.startswith("xgboost") or (
        module.startswith("sklearn.ensemble") and hasattr(estimator, "estimators_")
    ):
        return "tree"
    if module.startswith("sklearn.linear_model"):
        return "linear"
    return "permutation"


def _sample(matrix: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(matrix) <= limit:
        return matrix
    return matrix[np.sort(rng.choice(len(matrix), size=limit, replace=False))]


def _shap_values(
    shap: Any, kind: str, estimator: Any, background: np.ndarray, rows: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, int | None]:
    """Return SHAP values, shape (n, f) or (n, f, K), and the background size (None for trees)."""
    if kind == "tree":
        explainer = shap.TreeExplainer(estimator)
        return np.asarray(explainer.shap_values(rows, check_additivity=False)), None
    sample = _sample(background, BACKGROUND_ROWS if kind == "linear" else MODEL_AGNOSTIC_BACKGROUND, rng)
    masker = shap.maskers.Independent(sample, max_samples=len(sample))
    if kind == "linear":
        return np.asarray(shap.LinearExplainer(estimator, masker).shap_values(rows)), len(sample)
    explainer = shap.PermutationExplainer(batch_predict(estimator), masker, seed=int(rng.integers(2**31)))
    return np.asarray(explainer(rows, silent=True).values), len(sample)


def batch_predict(estimator: Any) -> Any:
    """The function the model-agnostic explainer calls: rows (n, f) -> outputs (n, K) or (n,).

    For a skorch network, alone or after stateless steps (the float32 cast of the PyTorch
    program), it runs the steps, then the network's module once on the whole batch in
    evaluation mode, then the network's own prediction nonlinearity (softmax for
    classification): the same numbers as ``predict_proba``, without its per-row data loader.
    For any other estimator it is ``predict_proba``, or ``predict`` when there is none.
    """
    steps = list(getattr(estimator, "steps", [("estimator", estimator)]))
    net = steps[-1][1]
    if not (hasattr(net, "infer") and hasattr(net, "module_")):
        return estimator.predict_proba if hasattr(estimator, "predict_proba") else estimator.predict
    import torch

    before = [step for _, step in steps[:-1]]
    nonlinearity = net._get_predict_nonlinearity()

    def predict(rows: np.ndarray) -> np.ndarray:
        for step in before:
            rows = step.transform(rows)
        net.module_.eval()
        with torch.no_grad():
            outputs = nonlinearity(net.infer(torch.as_tensor(rows)))
        return outputs.cpu().numpy()

    return predict


def _summary_plot(
    shap: Any,
    values: np.ndarray,
    rows: np.ndarray,
    names: list[str],
    labels: list[str] | None,
    kind: str,
    path: Path,
) -> None:
    """Beeswarm of the top features (one output), or stacked bars per class (multiclass)."""
    import matplotlib.pyplot as plt  # shap draws on pyplot's current figure

    shown = min(TOP_FEATURES, len(names))
    size = (8.0, max(4.5, 0.45 * shown + 1.5))
    common = {"feature_names": names, "max_display": TOP_FEATURES, "show": False, "plot_size": size}
    try:
        if values.ndim == 3:
            classes = labels or [str(k) for k in range(values.shape[2])]
            per_class = [values[:, :, k] for k in range(values.shape[2])]
            shap.summary_plot(per_class, rows, class_names=classes, **common)
        else:
            shap.summary_plot(values, rows, **common)
        figure = plt.gcf()
        figure.suptitle(f"SHAP summary ({kind} explainer, {len(rows)} test rows)", y=1.01)
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    finally:
        plt.close("all")
