"""The SageMaker training contract, as the training programs see it.

A training program reads its hyperparameters from ``/opt/ml/input/config/hyperparameters.json``
(a JSON map whose values are all strings), its channels from ``/opt/ml/input/data/<channel>/``,
writes the model to ``/opt/ml/model/`` and, when it fails, a reason to
``/opt/ml/output/failure``. Metrics go to stdout as ``{split}_{metric}=value`` lines.

``MLOPS_OPT_ML`` moves the root (local jobs get one folder each); the ``SM_*`` variables
(``SM_CHANNEL_<NAME>``, ``SM_MODEL_DIR``, ``SM_OUTPUT_DATA_DIR``) override single locations, as
the SageMaker training toolkit sets them.

The hyperparameters also carry reserved keys that describe the job rather than the estimator:
``_algorithm``, ``_task``, ``_target``, ``_preprocessing``, ``_feature_types``, ``_seed`` and,
for reinforcement learning, ``_environment`` (``JobConfig``). Only the standard library, numpy,
pandas and joblib are imported here.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

#: Default root of the contract inside a SageMaker container.
DEFAULT_ROOT = "/opt/ml"
#: Hyperparameter keys that describe the job, not the estimator.
RESERVED_KEYS = (
    "_algorithm",
    "_task",
    "_target",
    "_preprocessing",
    "_feature_types",
    "_seed",
    "_environment",
    # added to every trial by SageMaker automatic model tuning (Developer Guide, "Define
    # Hyperparameter Ranges"): it names the objective, it is not an estimator's hyperparameter
    "_tuning_objective_metric",
)
#: Every task a training program may be given; the first two need a target column.
TASKS = ("classification", "regression", "clustering", "dimensionality_reduction", "control")
#: How many traceback lines the failure file keeps after the headline.
_TRACEBACK_TAIL_LINES = 15


@dataclass(frozen=True)
class TrainingContract:
    """Where a training program finds its inputs and puts its outputs.

    Attributes:
        root: the ``/opt/ml`` folder (``MLOPS_OPT_ML`` when set).
        hyperparameters_file: ``root/input/config/hyperparameters.json``.
        input_data_dir: ``root/input/data``; channel ``c`` is ``input_data_dir/c`` unless
            ``SM_CHANNEL_C`` says otherwise.
        model_dir: where the model goes (``SM_MODEL_DIR`` or ``root/model``).
        output_dir: ``root/output``.
        failure_file: ``root/output/failure``.
        output_data_dir: extra outputs (``SM_OUTPUT_DATA_DIR`` or ``root/output/data``).
        checkpoints_dir: ``root/checkpoints`` (synced to S3 on spot instances).
        channel_overrides: channel name (lower case) -> folder, from ``SM_CHANNEL_*``.
    """

    root: Path
    hyperparameters_file: Path
    input_data_dir: Path
    model_dir: Path
    output_dir: Path
    failure_file: Path
    output_data_dir: Path
    checkpoints_dir: Path
    channel_overrides: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainingContract:
        """Build the paths from ``MLOPS_OPT_ML`` and the ``SM_*`` variables.

        Args:
            environ: the environment to read (default ``os.environ``).

        Returns:
            The contract's paths; nothing is created on disk.
        """
        env = os.environ if environ is None else environ
        root = Path(env.get("MLOPS_OPT_ML") or DEFAULT_ROOT)
        output_dir = root / "output"
        overrides = {
            key.removeprefix("SM_CHANNEL_").lower(): Path(value)
            for key, value in env.items()
            if key.startswith("SM_CHANNEL_") and value
        }
        return cls(
            root=root,
            hyperparameters_file=root / "input" / "config" / "hyperparameters.json",
            input_data_dir=root / "input" / "data",
            model_dir=Path(env.get("SM_MODEL_DIR") or root / "model"),
            output_dir=output_dir,
            failure_file=output_dir / "failure",
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR") or output_dir / "data"),
            checkpoints_dir=root / "checkpoints",
            channel_overrides=overrides,
        )

    def channel_dir(self, name: str) -> Path:
        """Return the folder of channel ``name`` (it may not exist)."""
        return self.channel_overrides.get(name.lower(), self.input_data_dir / name)

    def read_hyperparameters(self) -> dict[str, Any]:
        """Read the hyperparameters file and decode each value.

        SageMaker passes every value as a string; each is decoded with ``json.loads`` and kept
        as the raw string when it is not JSON (``"sqrt"`` stays ``"sqrt"``).

        Returns:
            name -> decoded value; empty when the file does not exist.

        Raises:
            ValueError: the file is not a JSON object.
        """
        if not self.hyperparameters_file.exists():
            return {}
        raw = json.loads(self.hyperparameters_file.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"{self.hyperparameters_file} must hold a JSON object, got {type(raw).__name__}")
        return {key: _decode(value) for key, value in raw.items()}

    def read_channel(self, name: str, required: bool = True) -> pd.DataFrame | None:
        """Read a channel's table: ``data.parquet``, else every ``*.parquet`` or ``*.csv`` file.

        Args:
            name: the channel, e.g. ``train`` or ``validation``.
            required: raise when the channel is absent instead of returning None.

        Returns:
            The rows of the channel, or None for an absent optional channel.

        Raises:
            FileNotFoundError: a required channel is absent or holds no parquet/csv file.
        """
        folder = self.channel_dir(name)
        files = (
            [folder / "data.parquet"]
            if (folder / "data.parquet").is_file()
            else sorted(folder.glob("*.parquet"))
        )
        if files:
            return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        csvs = sorted(folder.glob("*.csv"))
        if csvs:
            return pd.concat([pd.read_csv(f) for f in csvs], ignore_index=True)
        if required:
            raise FileNotFoundError(
                f"channel {name!r} has no data.parquet, *.parquet or *.csv file in {folder}; "
                "pass the split folder as the channel"
            )
        return None

    def save_model(self, model: Any, metadata: dict[str, Any]) -> Path:
        """Write ``model.joblib`` and ``metadata.json`` to the model folder.

        Args:
            model: the fitted model (an sklearn Pipeline).
            metadata: JSON-serialisable facts about the model.

        Returns:
            The path of ``model.joblib``.
        """
        self.model_dir.mkdir(parents=True, exist_ok=True)
        path = self.model_dir / "model.joblib"
        joblib.dump(model, path)
        (self.model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
        return path

    def write_failure(self, reason: str) -> None:
        """Write ``reason`` to the failure file, creating the output folder."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.failure_file.write_text(reason)


@dataclass(frozen=True)
class JobConfig:
    """The reserved hyperparameters plus the estimator's own ones.

    Attributes:
        algorithm: e.g. ``xgboost``.
        task: one of ``TASKS``.
        target: the target column of the channels; for clustering and dimensionality reduction
            an optional label column kept out of the features (plots colour by it); None for
            control.
        preprocessing: as ``PreprocessingSpec`` dumps it (missing_values, encoding, ...).
        feature_types: column -> ``numeric`` | ``categorical``; empty means infer from dtypes.
        seed: random seed of the estimator.
        hyperparameters: the estimator's hyperparameters (reserved keys removed).
        environment: control only: the spec's ``environment`` section (``name``,
            ``total_timesteps``, ``stop_mean_return``, ``evaluation_episodes``).
    """

    algorithm: str
    task: str
    target: str | None
    preprocessing: dict[str, Any]
    feature_types: dict[str, str]
    seed: int
    hyperparameters: dict[str, Any]
    environment: dict[str, Any] | None = None

    @classmethod
    def from_hyperparameters(cls, values: Mapping[str, Any]) -> JobConfig:
        """Split decoded hyperparameters into the job's description and the estimator's values.

        Raises:
            ValueError: ``_algorithm`` or ``_task`` is missing, ``_task`` is not one of
                ``TASKS``, ``_target`` is missing for classification or regression, or
                ``_environment`` is missing for control.
        """
        task = str(values.get("_task") or "")
        required = ["_algorithm", "_task"]
        required += ["_target"] if task in TASKS[:2] else ["_environment"] if task == "control" else []
        missing = [k for k in required if not values.get(k)]
        if missing:
            raise ValueError(f"hyperparameters lack the reserved keys {missing}; the backend sets them")
        if task not in TASKS:
            raise ValueError(f"_task must be one of {', '.join(TASKS)}; got {task!r}")
        target = values.get("_target")
        return cls(
            algorithm=str(values["_algorithm"]),
            task=task,
            target=str(target) if target else None,
            preprocessing=dict(values.get("_preprocessing") or {}),
            feature_types=dict(values.get("_feature_types") or {}),
            seed=int(values.get("_seed") or 0),
            hyperparameters={k: v for k, v in values.items() if k not in RESERVED_KEYS},
            environment=dict(values["_environment"]) if values.get("_environment") else None,
        )


def write_metric_lines(lines: list[str]) -> None:
    """Write metric lines to stdout, one per line, and flush (the log is read while running)."""
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


def failure_text(err: BaseException) -> str:
    """Return ``"ExceptionType: message"`` followed by the traceback's last lines."""
    tail = traceback.format_exception(type(err), err, err.__traceback__)
    lines = "".join(tail).rstrip().splitlines()[-_TRACEBACK_TAIL_LINES:]
    return f"{type(err).__name__}: {err}\n\n" + "\n".join(lines) + "\n"


def run(main: Callable[[], None], contract: TrainingContract | None = None) -> None:
    """Run a training program's ``main`` under the contract's failure protocol.

    On any exception the failure file receives ``"ExceptionType: message"`` plus the traceback
    tail, the full traceback goes to stderr, and the process exits with status 1.

    Args:
        main: the program, taking no arguments.
        contract: where the failure file is (default ``TrainingContract.from_env()``).

    Raises:
        SystemExit: with code 1 when ``main`` raised.
    """
    run_reporting_failures(main, lambda text: (contract or TrainingContract.from_env()).write_failure(text))


def run_reporting_failures(main: Callable[[], None], write_failure: Callable[[str], None]) -> None:
    """Run ``main``; on any exception report it through ``write_failure`` and exit with status 1.

    The failure protocol of both SageMaker contracts (training and processing): the failure
    file gets ``"ExceptionType: message"`` plus the traceback tail (``failure_text``), and the
    full traceback goes to stderr.

    Raises:
        SystemExit: with code 1 when ``main`` raised.
    """
    try:
        main()
    except Exception as err:  # noqa: BLE001 - every failure must reach the failure file
        try:
            write_failure(failure_text(err))
        finally:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        sys.exit(1)


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
