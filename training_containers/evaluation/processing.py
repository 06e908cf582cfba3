"""The SageMaker Processing contract, as the evaluation program sees it.

A processing job's inputs are mounted under ``/opt/ml/processing/input/<name>/`` and whatever
it writes under ``/opt/ml/processing/output/`` is uploaded when it ends. The evaluation reads:

- ``input/model/``: ``model.joblib`` (a fitted scikit-learn Pipeline) and ``metadata.json``,
  or the training job's ``model.tar.gz`` holding them (SageMaker's model artifact), unpacked
  to ``root/model/`` first;
- ``input/{train,validation,test}/data.parquet`` (``validation`` optional);
- ``input/config/evaluation.json``: the job's configuration (``EvaluationConfig``).

Control tasks (reinforcement learning) mount no splits: the evaluation plays episodes in the
Gymnasium environment named by the configuration. It writes ``output/report.json``,
``output/plots/*.png``, ``output/baseline/baseline.json``
and, when it fails, ``output/failure`` (first line ``"ExceptionType: message"``; exit status 1).
``MLOPS_PROCESSING_ROOT`` moves the root (a local job gets one folder each).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from training_containers.common.contract import run_reporting_failures

#: Default root of the contract inside a SageMaker processing container.
DEFAULT_ROOT = "/opt/ml/processing"
#: Tasks the evaluation scores.
TASKS = ("classification", "regression", "clustering", "dimensionality_reduction", "control")


@dataclass(frozen=True)
class ProcessingContract:
    """Where the evaluation program finds its inputs and puts its outputs.

    Attributes:
        root: the ``/opt/ml/processing`` folder (``MLOPS_PROCESSING_ROOT`` when set).
        model_dir: ``root/input/model``.
        config_file: ``root/input/config/evaluation.json``.
        output_dir: ``root/output``.
        failure_file: ``root/output/failure``.
    """

    root: Path
    model_dir: Path
    config_file: Path
    output_dir: Path
    failure_file: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessingContract:
        """Build the paths from ``MLOPS_PROCESSING_ROOT`` (default ``/opt/ml/processing``).

        Args:
            environ: the environment to read (default ``os.environ``).

        Returns:
            The contract's paths; nothing is created on disk.
        """
        env = os.environ if environ is None else environ
        root = Path(env.get("MLOPS_PROCESSING_ROOT") or DEFAULT_ROOT)
        output_dir = root / "output"
        return cls(
            root=root,
            model_dir=root / "input" / "model",
            config_file=root / "input" / "config" / "evaluation.json",
            output_dir=output_dir,
            failure_file=output_dir / "failure",
        )

    def unpacked(self) -> ProcessingContract:
        """Return the contract with the model unpacked when it came as ``model.tar.gz``.

        SageMaker hands a training job's model to a processing job as its artifact,
        ``model.tar.gz``; it is extracted (regular files and folders only, nothing outside the
        target: ``tarfile``'s ``data`` filter) to ``root/model/``, which becomes ``model_dir``.

        Raises:
            tarfile.TarError: the archive is corrupt or holds a member the filter refuses.
        """
        archive = self.model_dir / "model.tar.gz"
        if not archive.is_file():
            return self
        target = self.root / "model"
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as bundle:
            bundle.extractall(target, filter="data")
        return dataclasses.replace(self, model_dir=target)

    def split_file(self, name: str) -> Path:
        """Return ``root/input/<name>/data.parquet`` (it may not exist)."""
        return self.root / "input" / name / "data.parquet"

    def read_split(self, name: str, required: bool = True) -> pd.DataFrame | None:
        """Read one split's rows.

        Args:
            name: ``train``, ``validation`` or ``test``.
            required: raise when the split is absent instead of returning None.

        Returns:
            The rows, or None for an absent optional split.

        Raises:
            FileNotFoundError: a required split has no data.parquet.
            ValueError: a required split has no rows.
        """
        path = self.split_file(name)
        if not path.is_file():
            if required:
                raise FileNotFoundError(f"the {name} split has no {path}; mount it as input/{name}/")
            return None
        frame = pd.read_parquet(path)
        if frame.empty and required:
            raise ValueError(f"the {name} split ({path}) has no rows")
        return frame

    def output(self, relative: str) -> Path:
        """Return ``output_dir/relative``, creating its parent folder."""
        path = self.output_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_failure(self, reason: str) -> None:
        """Write ``reason`` to the failure file, creating the output folder."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.failure_file.write_text(reason)


@dataclass(frozen=True)
class FairnessConfig:
    """The fairness check: ``metric`` compared across the groups of ``sensitive_feature``.

    Attributes:
        sensitive_feature: a raw column of the test split.
        max_difference: the largest between-group difference of ``metric`` that passes.
        metric: ``selection_rate``, ``accuracy``, ``recall``, ``precision``, ``f1`` (classification)
            or ``mae``, ``rmse`` (regression); None picks the task's default (see ``fairness``).
    """

    sensitive_feature: str
    max_difference: float = 0.1
    metric: str | None = None


@dataclass(frozen=True)
class EvaluationConfig:
    """The content of ``input/config/evaluation.json``.

    Attributes:
        evaluation_id: the job's name, echoed in the report.
        task: one of ``TASKS``.
        algorithm: e.g. ``xgboost`` (informative; the estimator's type decides the explainer).
        target: the target column (default: the model's metadata); for clustering and
            dimensionality reduction an optional label column that only colours the plots.
        metrics: metric names that must be computable on the test split.
        class_labels: label of each class code 0..K-1, or None.
        explainability: ``shap`` or None.
        fairness: the fairness check, or None.
        seed: random seed of any sampling (SHAP background, learning-curve refits).
        shap_max_rows: most test rows SHAP explains.
        environment: control only: the spec's ``environment`` section (``name``,
            ``evaluation_episodes``, ...).
    """

    evaluation_id: str
    task: str
    algorithm: str = ""
    target: str | None = None
    metrics: list[str] = field(default_factory=list)
    class_labels: list[str] | None = None
    explainability: str | None = None
    fairness: FairnessConfig | None = None
    seed: int = 0
    shap_max_rows: int = 500
    environment: dict[str, Any] | None = None

    @classmethod
    def read(cls, path: Path) -> EvaluationConfig:
        """Read and check the configuration file.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: not a JSON object, an unknown key, an unsupported task or explainability.
        """
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown keys {unknown} in {path}; allowed: {sorted(cls.__dataclass_fields__)}")
        if raw.get("task") not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {raw.get('task')!r}")
        if raw.get("task") == "control" and not (raw.get("environment") or {}).get("name"):
            raise ValueError("a control evaluation needs environment.name (a Gymnasium id)")
        if raw.get("explainability") not in (None, "shap"):
            raise ValueError(f"explainability must be 'shap' or null, got {raw['explainability']!r}")
        fairness = raw.get("fairness")
        return cls(**{**raw, "fairness": FairnessConfig(**fairness) if fairness else None})


def run(main: Callable[[], None], contract: ProcessingContract | None = None) -> None:
    """Run the program's ``main`` under the processing contract's failure protocol.

    On any exception the failure file receives ``"ExceptionType: message"`` plus the traceback
    tail (``common.contract.failure_text``), the full traceback goes to stderr, and the process
    exits with status 1.

    Raises:
        SystemExit: with code 1 when ``main`` raised.
    """
    run_reporting_failures(main, lambda text: (contract or ProcessingContract.from_env()).write_failure(text))


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays inside ``value`` to plain Python for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def say(line: str) -> None:
    """Write one progress line to the job's log (stdout), flushed."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def write_json(contract: ProcessingContract, relative: str, data: dict[str, Any]) -> None:
    """Write ``output/relative`` as JSON atomically (a temporary file, then ``os.replace``).

    numpy values are converted first (``to_jsonable``).
    """
    path = contract.output(relative)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(to_jsonable(data), indent=2) + "\n")
    os.replace(temporary, path)
