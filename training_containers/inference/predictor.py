"""A model folder loaded once and predicted natively: a scikit-learn pipeline or a greedy policy.

- **Supervised and clustering models** (``model.joblib``: a scikit-learn ``Pipeline`` whose
  earlier steps preprocess the raw columns, whose last step is the estimator: scikit-learn,
  XGBoost's scikit-learn estimator, or skorch's torch module). The pipeline is replayed as numpy
  operations when ``compiled`` can (checked against the pipeline when loaded); otherwise rows
  become a pandas frame with the training columns, then ``predict`` (and ``predict_proba`` for a
  classifier that has it), as ``Pipeline`` does.
- **Policies** (``policy/``, reinforcement learning): observations in, greedy actions out
  (``training_containers.rl.greedy``).

A model that cannot predict new rows (t-SNE only embeds the rows it was fitted on) is refused
when it is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training_containers.inference.compiled import CompiledPipeline, compile_pipeline
from training_containers.inference.schema import InputSchema, Rows, rows_frame


class Predictor(Protocol):
    """A loaded model: its input schema and a batch prediction."""

    schema: InputSchema

    def predict(self, rows: Rows) -> dict[str, Any]:
        """Predict checked rows (``schema.parse_body``'s output).

        Returns:
            ``{"predictions": [...]}`` one a row (class labels when known, else class codes,
            values, cluster ids or actions), plus ``"probabilities"`` ([[p_class, ...]] a row)
            for a classifier that gives them.
        """
        ...


@dataclass
class PipelinePredictor:
    """A scikit-learn pipeline (``model.joblib``) and its schema.

    Attributes:
        pipeline: the fitted pipeline.
        schema: its inputs.
        compiled: the pipeline as numpy operations (``compiled``), or None to call the pipeline
            itself (a pandas frame a request).
    """

    pipeline: Any
    schema: InputSchema
    compiled: CompiledPipeline | None = None

    def predict(self, rows: Rows) -> dict[str, Any]:
        """See ``Predictor.predict``."""
        wants_proba = self.schema.task == "classification"
        if self.compiled is not None:
            predicted, proba = self.compiled.predict(
                self.compiled.transform(rows.numbers, rows.categories), wants_proba
            )
        else:
            predicted, proba = self._predict_frame(rows, wants_proba)
        out: dict[str, Any] = {}
        if self.schema.task == "classification":
            codes = np.asarray(predicted).astype(int)
            labels = self.schema.class_labels
            out["predictions"] = [labels[c] for c in codes] if labels else codes.tolist()
            if proba is not None:
                out["probabilities"] = np.round(proba, 6).tolist()
        elif self.schema.task == "regression":
            out["predictions"] = np.asarray(predicted).astype(float).tolist()
        else:
            out["predictions"] = np.asarray(predicted).astype(int).tolist()
        return out

    def _predict_frame(self, rows: Rows, wants_proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The pipeline itself on a pandas frame of the rows."""
        frame = rows_frame(self.schema, rows)
        predicted = np.asarray(self.pipeline.predict(frame))
        proba = None
        if wants_proba and hasattr(self.pipeline, "predict_proba"):
            proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float)
        return predicted, proba


@dataclass
class PolicyPredictor:
    """A greedy policy (reinforcement learning): observations in, actions out."""

    policy: Any
    schema: InputSchema

    def predict(self, rows: Rows) -> dict[str, Any]:
        """See ``Predictor.predict``: the predictions are the greedy actions (ints)."""
        observations = np.asarray(rows.numbers, dtype=np.float32)
        return {"predictions": np.asarray(self.policy.act(observations)).astype(int).tolist()}


def load_predictor(model_dir: Path, class_labels: list[str] | None = None) -> Predictor:
    """Load a training job's model folder for serving.

    Args:
        model_dir: the folder holding ``metadata.json`` and ``model.joblib`` or ``policy/``.
        class_labels: each class code's label (the dataset's ``class_labels``), or None to
            answer with class codes.

    Raises:
        FileNotFoundError: no ``metadata.json``, or neither ``model.joblib`` nor ``policy/``.
        ValueError: ``model.joblib`` cannot be unpickled, the model cannot predict new rows, or
            its metadata names no features.
    """
    model_dir = Path(model_dir)
    metadata_path = model_dir / "metadata.json"
    if not metadata_path.is_file():
        raise FileNotFoundError(
            f"{metadata_path} does not exist; is {model_dir} a training job's model folder?"
        )
    metadata = json.loads(metadata_path.read_text())
    if (model_dir / "policy").is_dir():
        from training_containers.rl.greedy import load_policy

        return PolicyPredictor(load_policy(model_dir), InputSchema.from_metadata(metadata))
    if not (model_dir / "model.joblib").is_file():
        raise FileNotFoundError(f"{model_dir} holds neither model.joblib nor policy/; nothing to serve")
    import joblib

    try:
        pipeline = joblib.load(model_dir / "model.joblib")
    except Exception as err:  # a truncated or foreign file: unpickling raises many kinds
        raise ValueError(
            f"cannot load {model_dir / 'model.joblib'} ({type(err).__name__}: {str(err)[:200]}); "
            "is it a training job's model?"
        ) from err
    if not hasattr(pipeline, "predict"):
        algorithm = metadata.get("algorithm", type(pipeline).__name__)
        raise ValueError(
            f"{algorithm} cannot predict new rows (it only embeds the rows it was fitted on); "
            "it cannot be served"
        )
    schema = InputSchema.from_metadata(metadata, class_labels)
    compiled = compile_pipeline(pipeline, schema)
    return PipelinePredictor(pipeline, schema, compiled)
