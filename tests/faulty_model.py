"""A classifier that fails on a share of its inputs: the faulty challenger of the canary tests.

``FaultyClassifier`` wraps a fitted pipeline and raises for every row whose first feature is
above ``threshold``, so an endpoint serving it answers 500 to those requests. It is importable
by the inference server process (the repository root is its working directory).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class FaultyClassifier:
    """Predicts like ``pipeline`` but raises ``RuntimeError`` for rows with ``first feature > threshold``."""

    def __init__(self, pipeline: Any, feature: str, threshold: float) -> None:
        self.pipeline, self.feature, self.threshold = pipeline, feature, threshold
        self.classes_ = getattr(pipeline, "classes_", None)

    def predict(self, rows: Any) -> Any:
        """The pipeline's predictions, or RuntimeError when a row is past the threshold."""
        values = np.asarray(rows[self.feature], dtype=float)
        if np.any(values > self.threshold):
            raise RuntimeError(f"{self.feature} above {self.threshold}: this model fails there")
        return self.pipeline.predict(rows)
