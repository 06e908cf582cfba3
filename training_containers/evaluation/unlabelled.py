"""Loading and reading for the evaluation of models without a target: clustering and embeddings.

The model folder holds ``model.joblib`` (a ``Pipeline`` of ``preprocess`` and the estimator),
``metadata.json`` and the training rows' ``labels.parquet`` or ``embedding.parquet``
(``common.unsupervised``). Each split is transformed once through the preprocessing step; the
optional label column (the spec's ``dataset.target``) is read beside it, never as a feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training_containers.evaluation.baseline import build_baseline, feature_kinds
from training_containers.evaluation.processing import EvaluationConfig, ProcessingContract, write_json
from training_containers.evaluation.scoring import read_model_folder

#: Where the drift baseline goes, relative to ``output/`` (as for supervised models).
BASELINE = "baseline/baseline.json"


@dataclass(frozen=True)
class UnlabelledModel:
    """A trained clustering or embedding model, split into its preprocessing and its estimator.

    Attributes:
        pipeline: the saved object (a Pipeline, or a bare estimator).
        preprocessor: every step but the last (None when there is none).
        estimator: the last step (``KMeans``, ``InductiveDBSCAN``, ``PCA``, ``TSNE``).
        features: the raw feature columns, in the order the model was trained on.
        feature_types: column -> ``numeric`` | ``categorical``.
        label: the label column that colours plots, or None.
        metadata: the content of metadata.json.
        folder: the model folder (for ``labels.parquet`` / ``embedding.parquet``).
    """

    pipeline: Any
    preprocessor: Any
    estimator: Any
    features: list[str]
    feature_types: dict[str, str]
    label: str | None
    metadata: dict[str, Any]
    folder: Path

    @property
    def algorithm(self) -> str:
        """The algorithm named in metadata.json (e.g. ``kmeans``), or ``""``."""
        return str(self.metadata.get("algorithm", ""))


@dataclass(frozen=True)
class Rows:
    """One split, as the model sees it.

    Attributes:
        name: ``train``, ``validation`` or ``test``.
        frame: the split's rows, every column.
        Xt: the preprocessed features, shape (n, n_transformed), dense floats.
        labels: the label column's values (n,), or None when the split lacks it.
    """

    name: str
    frame: pd.DataFrame
    Xt: np.ndarray
    labels: pd.Series | None


def load_unlabelled_model(model_dir: Path, config: EvaluationConfig) -> UnlabelledModel:
    """Load ``model.joblib`` and ``metadata.json`` from ``model_dir``.

    Raises:
        FileNotFoundError: either file is missing.
        ValueError: metadata.json names no feature_names.
    """
    metadata, pipeline, preprocessor, estimator = read_model_folder(model_dir)
    features = list(metadata.get("feature_names") or [])
    if not features:
        raise ValueError("metadata.json must name the model's feature_names")
    label = config.target or metadata.get("target")
    types = dict(metadata.get("feature_types") or {})
    return UnlabelledModel(
        pipeline, preprocessor, estimator, features, types, str(label) if label else None, metadata, model_dir
    )


def read_rows(contract: ProcessingContract, model: UnlabelledModel, name: str, required: bool) -> Rows | None:
    """Read one split and preprocess its feature columns.

    Args:
        contract: where the splits are mounted.
        model: the loaded model.
        name: ``train``, ``validation`` or ``test``.
        required: raise when the split is absent instead of returning None.

    Returns:
        The split's rows, or None for an absent optional split.

    Raises:
        FileNotFoundError: a required split is absent.
        ValueError: the split lacks a feature column, or the preprocessing fails on its rows.
    """
    frame = contract.read_split(name, required=required)
    if frame is None:
        return None
    missing = [c for c in model.features if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the {name} split lacks columns {missing} that the model was trained on; its "
            f"columns are {list(frame.columns)[:30]}"
        )
    X = frame[model.features]
    try:
        transformed = model.preprocessor.transform(X) if model.preprocessor is not None else X
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"the model's preprocessing failed on the {name} split ({type(err).__name__}: {err})"
        ) from err
    if hasattr(transformed, "toarray"):
        transformed = transformed.toarray()
    labels = (
        frame[model.label].reset_index(drop=True) if model.label and model.label in frame.columns else None
    )
    return Rows(name, frame, np.asarray(transformed, dtype=float), labels)


def check_requested(requested: Sequence[str], produced: dict[str, float], split: str, why: str) -> None:
    """Fail when a requested metric was not produced on the split the judge reads.

    Args:
        requested: the metric names of ``evaluation.metrics`` (and thresholds).
        produced: metric name -> value on ``split``.
        split: the split the judge reads (``test``, or ``train`` for t-SNE).
        why: what the family produces and when, for the message.

    Raises:
        ValueError: naming the absent metrics, what is produced, and the fix.
    """
    absent = [m for m in requested if m not in produced]
    if absent:
        raise ValueError(
            f"cannot compute {absent} on the {split} split: {why}; produced: {sorted(produced)}. Drop "
            "them from evaluation.metrics and evaluation.thresholds"
        )


def save_baseline(contract: ProcessingContract, model: UnlabelledModel, train: pd.DataFrame) -> str:
    """Write the training split's drift baseline (no target: these models predict none).

    Returns:
        The baseline's path relative to ``output/``.
    """
    kinds = feature_kinds(train, model.features, model.feature_types)
    write_json(contract, BASELINE, build_baseline(train, kinds, None))
    return BASELINE
