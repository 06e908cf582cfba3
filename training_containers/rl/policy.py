"""The greedy policy of a reinforcement-learning model folder, and its MLflow pyfunc wrapper.

``load_policy`` and ``GreedyPolicy`` come from ``greedy`` (no MLflow there, for the training
and evaluation images). ``PolicyModel`` makes a model folder an MLflow pyfunc model::

    mlflow.pyfunc.log_model(name="model", python_model=PolicyModel(),
                            artifacts={"model_dir": "/path/to/model"}, pip_requirements=[...])

Its ``predict`` takes one observation per row (a DataFrame, an array or a list of lists) and
returns the greedy action of each row as an int64 array (n,).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from training_containers.rl.greedy import A3CPolicy, GreedyPolicy, RLModulePolicy, load_policy

__all__ = ["A3CPolicy", "GreedyPolicy", "PolicyModel", "RLModulePolicy", "load_policy"]


class PolicyModel(PythonModel):
    """MLflow pyfunc model: observations in, greedy actions out.

    The artifact ``model_dir`` is the model folder of ``training_containers.rl.train``.
    """

    def __init__(self) -> None:
        """Nothing is loaded until ``load_context``."""
        self._policy: GreedyPolicy | None = None
        self._columns: list[str] = []

    def load_context(self, context: Any) -> None:
        """Load the policy from ``context.artifacts["model_dir"]``.

        Raises:
            FileNotFoundError: the folder lacks ``metadata.json`` or ``policy/``.
        """
        folder = Path(context.artifacts["model_dir"])
        self._policy = load_policy(folder)
        self._columns = json.loads((folder / "metadata.json").read_text()).get("observation_names", [])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Return the greedy action (n,) of each observation row.

        No type hints: MLflow 3 turns the hints of ``predict`` into a schema and accepts only
        ``list[...]`` ones, which would reject a DataFrame.

        Args:
            context: MLflow's context (unused; the policy was loaded by ``load_context``).
            model_input: observations, one per row: a DataFrame (columns ``observation_0``, ...
                taken in that order when present, else all columns in order), an array
                (n, observation_size) or a list of such rows.
            params: unused (MLflow's inference parameters).

        Returns:
            int64 actions, shape (n,).

        Raises:
            RuntimeError: called before ``load_context``.
            ValueError: the rows do not have the observation's size.
        """
        if self._policy is None:
            raise RuntimeError(
                "PolicyModel.predict before load_context; load it with mlflow.pyfunc.load_model"
            )
        if isinstance(model_input, pd.DataFrame):
            named = [c for c in self._columns if c in model_input.columns]
            frame = model_input[named] if named and len(named) == len(self._columns) else model_input
            rows = frame.to_numpy(dtype=np.float32)
        else:
            rows = np.asarray(model_input, dtype=np.float32)
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
        if self._columns and rows.shape[1] != len(self._columns):
            raise ValueError(
                f"each row must hold {len(self._columns)} observation values "
                f"({', '.join(self._columns)}); got rows of {rows.shape[1]}"
            )
        return self._policy.act(rows)
