"""The training spec users write in an issue, as pydantic models, and its validation.

``validate_spec`` turns a plain mapping (from an issue form or a YAML block) into a normalised
``TrainingSpec`` or raises ``SpecValidationError`` carrying *every* problem found, each with the
field path, the value received and what is allowed. Pure: no I/O.

The schema is documented in the README ("Writing a training request"), including the optional
top-level ``model_name`` (the registered model's name; derived from the dataset and task when
absent).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mcp_server.core import catalog
from mcp_server.core.catalog import Algorithm, ModelType, Task
from mcp_server.core.hyperparameters import HYPERPARAMETER_MODELS

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

#: The value of a SpecError for a field that is absent (shown without "got ...").
MISSING: Any = object()
_MISSING = MISSING


@dataclass(frozen=True)
class SpecError:
    """One problem in a spec.

    Attributes:
        path: dotted field path, e.g. ``dataset.split.train``; ``(spec)`` for the whole spec.
        value: the value received (``None`` when the field is missing).
        message: what is wrong and what is allowed.
    """

    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        """Render as ``path: message (got value)``."""
        shown = "" if self.value is _MISSING else f" (got {self.value!r})"
        return f"{self.path}: {self.message}{shown}"


class SpecValidationError(ValueError):
    """Raised when a spec has one or more errors; ``errors`` lists them all."""

    def __init__(self, errors: list[SpecError]) -> None:
        """Build from the list of errors (at least one)."""
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


# ---------------------------------------------------------------------------------------------
# Models (structure, types and single-field ranges)
# ---------------------------------------------------------------------------------------------


class _Section(BaseModel):
    # strict: YAML `true` is not an integer and "5" is not a number; ints still count as floats.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SplitSpec(_Section):
    """How the dataset is split; fractions of the rows, summing to 1."""

    train: float = Field(0.7, gt=0, lt=1)
    validation: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    stratify: bool = Field(True, description="stratify on the target (classification only)")
    seed: int = Field(42, ge=0)


class DatasetSpec(_Section):
    """Where the data comes from and which column is the target."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    source: str
    target: str | None = None
    split: SplitSpec = SplitSpec()

    @field_validator("source")
    @classmethod
    def _source_scheme(cls, value: str) -> str:
        schemes = ("sklearn://", "file://", "s3://")
        if value.startswith(schemes) or re.match(r"^[a-z][a-z0-9+]*://", value):
            return value
        raise ValueError(
            "expected sklearn://NAME, file://PATH (csv or parquet), s3://BUCKET/KEY or a SQLAlchemy URL"
        )


class OutlierSpec(_Section):
    """Outlier removal on the training split: IQR fences or z-score."""

    method: Literal["iqr", "zscore"] = "iqr"
    factor: float = Field(1.5, gt=0, description="IQR multiple, or z-score cut-off")


class FeatureSelectionSpec(_Section):
    """Keep the ``k`` best features by correlation with the target or model importance."""

    method: Literal["correlation", "importance"] = "importance"
    k: int = Field(20, ge=1)


class PreprocessingSpec(_Section):
    """Cleaning and feature transforms, fitted on the training split only."""

    missing_values: Literal["drop", "mean", "median", "mode"] = "median"
    outliers: OutlierSpec | None = None
    drop_duplicates: bool = True
    encoding: Literal["onehot", "label", "target"] = "onehot"
    scaling: Literal["standard", "minmax", "none"] = "standard"
    feature_selection: FeatureSelectionSpec | None = None


class SearchParameter(_Section):
    """One dimension of a tuning search space."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: list[Any] | None = None


class TuningSpec(_Section):
    """Hyperparameter optimisation."""

    strategy: Literal["grid", "random", "bayesian"] = "bayesian"
    objective: str
    direction: Literal["maximize", "minimize"] | None = None
    max_trials: int = Field(20, ge=1, le=1000)
    parallel_trials: int = Field(1, ge=1, le=64)
    search_space: dict[str, SearchParameter]


class EnvironmentSpec(_Section):
    """A Gymnasium environment for reinforcement learning."""

    name: str
    total_timesteps: int = Field(100_000, ge=1)


class FairnessSpec(_Section):
    """Group fairness check on a sensitive feature."""

    sensitive_feature: str
    max_difference: float = Field(0.1, ge=0, le=1)


class EvaluationSpec(_Section):
    """Which metrics to report and the judge's thresholds."""

    metrics: list[str] | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    explainability: Literal["shap"] | None = None
    fairness: FairnessSpec | None = None


class CanarySpec(_Section):
    """Traffic steps (percent of requests to the new variant) and the bake time between them."""

    steps: list[int] = Field(default_factory=lambda: [10, 50, 100])
    interval_s: int = Field(60, ge=1, le=86_400)


class RollbackSpec(_Section):
    """Alarm limits that roll a deployment back."""

    error_rate: float = Field(0.01, ge=0, le=1)
    p95_latency_ms: float = Field(100, gt=0)


class AutoScalingSpec(_Section):
    """Endpoint auto scaling on invocations per instance."""

    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(4, ge=1)
    target_invocations_per_instance: int = Field(100, ge=1)


class DeploymentSpec(_Section):
    """Where and how a passing model is deployed."""

    target: Literal["local", "sagemaker_endpoint"] = "local"
    strategy: Literal["direct", "ab", "canary", "blue_green"] = "direct"
    canary: CanarySpec | None = None
    rollback_on: RollbackSpec = RollbackSpec()
    instance_type: str = "ml.m5.large"
    auto_scaling: AutoScalingSpec | None = None


class TriggersSpec(_Section):
    """What starts a retraining run by itself."""

    schedule: str | None = Field(None, pattern=r"^(rate|cron)\(.+\)$")
    drift_psi: float | None = Field(None, gt=0)
    metric_floor: dict[str, float] = Field(default_factory=dict)
    data_change: bool = False


class RetrainingSpec(_Section):
    """The retry budget and automatic retraining triggers."""

    max_attempts: int = Field(3, ge=1, le=10)
    triggers: TriggersSpec | None = None


class ComputeSpec(_Section):
    """Training resources. ``max_runtime_s`` also bounds local jobs (seconds)."""

    instance_type: str = Field("ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(1, ge=1, le=1)
    use_spot: bool = False
    max_runtime_s: int = Field(3600, ge=1, le=432_000)
    max_wait_s: int | None = Field(None, ge=1, le=432_000)
    volume_size_gb: int = Field(30, ge=1, le=16_384)


class TrainingSpec(_Section):
    """A whole training request, as validated and normalised by ``validate_spec``."""

    model_type: ModelType
    task: Task
    algorithm: Algorithm
    model_name: str | None = Field(None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    dataset: DatasetSpec | None = None
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    tuning: TuningSpec | None = None
    environment: EnvironmentSpec | None = None
    evaluation: EvaluationSpec = EvaluationSpec()
    deployment: DeploymentSpec | None = None
    retraining: RetrainingSpec = RetrainingSpec()
    compute: ComputeSpec = ComputeSpec()

    @property
    def registered_model_name(self) -> str:
        """The model package group / registered model name: ``model_name`` or dataset-task."""
        if self.model_name:
            return self.model_name
        base = self.dataset.name if self.dataset and self.dataset.name else "model"
        return re.sub(r"[^a-zA-Z0-9]+", "-", f"{base}-{self.task}").strip("-")[:63]

    @property
    def metrics(self) -> list[str]:
        """The metrics to report: the listed ones plus every thresholded one, in order."""
        listed = list(self.evaluation.metrics or catalog.DEFAULT_METRICS_BY_TASK[self.task])
        return listed + [m for m in self.evaluation.thresholds if m not in listed]

    def spec_hash(self) -> str:
        """Return the first 12 hex digits of the SHA-256 of the normalised spec's canonical JSON."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def validate_spec(data: Any) -> TrainingSpec:
    """Validate a raw spec mapping and return the normalised ``TrainingSpec``.

    Normalisation fills every default (including the algorithm's hyperparameter defaults) and
    derives ``dataset.name`` from the source when it is absent.

    Args:
        data: the spec as plain data (a mapping, as parsed from YAML or an issue form).

    Returns:
        The validated spec.

    Raises:
        SpecValidationError: with every error found, structural and cross-field alike.
    """
    if not isinstance(data, dict):
        raise SpecValidationError([SpecError("(spec)", data, "the spec must be a mapping of keys to values")])
    errors: list[SpecError] = []
    spec: TrainingSpec | None = None
    try:
        spec = TrainingSpec.model_validate(data)
    except ValidationError as err:
        errors.extend(_from_pydantic(err, TrainingSpec, ()))
    errored = {e.path for e in errors}
    errors.extend(e for e in _cross_field_errors(data) if e.path not in errored)
    hyperparameters, hp_errors = _validate_hyperparameters(data)
    errors.extend(e for e in hp_errors if e.path not in errored)
    if errors or spec is None:
        raise SpecValidationError(_dedupe(errors))
    updates: dict[str, Any] = {"hyperparameters": hyperparameters}
    if spec.dataset is not None and spec.dataset.name is None:
        updates["dataset"] = spec.dataset.model_copy(update={"name": _name_from_source(spec.dataset.source)})
    return spec.model_copy(update=updates)


def _name_from_source(source: str) -> str:
    tail = source.split("://", 1)[-1].rstrip("/").split("/")[-1].split("?")[0]
    stem = tail.rsplit(".", 1)[0] if "." in tail else tail
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")[:63] or "dataset"


def _dedupe(errors: list[SpecError]) -> list[SpecError]:
    """One error per field path: the first found (structural errors come before cross-field ones)."""
    seen: set[str] = set()
    out = []
    for e in errors:
        if e.path not in seen:
            seen.add(e.path)
            out.append(e)
    return out


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def _cross_field_errors(data: dict[str, Any]) -> list[SpecError]:  # noqa: C901
    """Checks that span fields; each runs only when the fields it reads are well-formed."""
    errors: list[SpecError] = []
    model_type, algorithm = data.get("model_type"), data.get("algorithm")
    raw_task = data.get("task")
    task: str = raw_task if isinstance(raw_task, str) else ""
    task_ok = task in catalog.TASKS
    if model_type in catalog.MODEL_TYPES and task_ok:
        allowed = catalog.TASKS_BY_MODEL_TYPE[model_type]
        if task not in allowed:
            errors.append(SpecError("task", task, f"{model_type} supports the tasks {_or(allowed)}"))
    if task_ok and algorithm in catalog.ALGORITHMS:
        allowed = catalog.ALGORITHMS_BY_TASK[task]
        if algorithm not in allowed:
            errors.append(SpecError("algorithm", algorithm, f"task {task} supports {_or(allowed)}"))
        elif (task, algorithm) not in catalog.SUPPORTED_TRAINING:
            runnable = sorted(a for t, a in catalog.SUPPORTED_TRAINING if t == task)
            hint = (
                f"available for {task} today: {_or(runnable)}"
                if runnable
                else (f"no {task} algorithm is available yet")
            )
            errors.append(
                SpecError(
                    "algorithm",
                    algorithm,
                    f"{algorithm} for {task} is not supported by the training containers yet; " + hint,
                )
            )
    dataset = data.get("dataset", _MISSING)
    if task_ok and task == "control":
        if dataset is not _MISSING:
            errors.append(SpecError("dataset", dataset, "control tasks use environment, not a dataset"))
        if "environment" not in data:
            errors.append(SpecError("environment", _MISSING, "required for the control task"))
    elif task_ok:
        if dataset is _MISSING:
            errors.append(SpecError("dataset", _MISSING, f"required for the {task} task"))
        if "environment" in data:
            errors.append(
                SpecError("environment", data["environment"], "only reinforcement learning uses it")
            )
    if task in ("classification", "regression") and isinstance(dataset, dict):
        if not dataset.get("target"):
            errors.append(
                SpecError(
                    "dataset.target",
                    dataset.get("target", MISSING),
                    f"required for {task}: the name of the column to predict",
                )
            )
    errors.extend(_split_errors(_get(data, "dataset", "split")))
    source = _get(data, "dataset", "source")
    if isinstance(source, str):
        errors.extend(_source_errors(source))
    if task_ok:
        errors.extend(_metric_errors(data, task))
    errors.extend(_unsupported_section_errors(data))
    errors.extend(_deployment_errors(data))
    compute = data.get("compute")
    if isinstance(compute, dict) and compute.get("use_spot") and isinstance(compute.get("max_wait_s"), int):
        runtime = compute.get("max_runtime_s", 3600)
        if isinstance(runtime, int) and compute["max_wait_s"] < runtime:
            errors.append(
                SpecError(
                    "compute.max_wait_s",
                    compute["max_wait_s"],
                    f"with use_spot it must be at least max_runtime_s ({runtime})",
                )
            )
    return errors


def _split_errors(split: Any) -> list[SpecError]:
    if not isinstance(split, dict):
        return []
    parts = {k: split.get(k, d) for k, d in (("train", 0.7), ("validation", 0.15), ("test", 0.15))}
    if not all(_is_number(v) for v in parts.values()):
        return []
    total = sum(parts.values())
    if abs(total - 1.0) > 1e-6:
        shown = " + ".join(f"{k} {v}" for k, v in parts.items())
        return [SpecError("dataset.split", parts, f"fractions must sum to 1, got {shown} = {total:g}")]
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _source_errors(source: str) -> list[SpecError]:
    if source.startswith("sklearn://"):
        name = source.removeprefix("sklearn://")
        if name not in catalog.SKLEARN_DATASETS:
            return [
                SpecError(
                    "dataset.source",
                    source,
                    f"unknown scikit-learn dataset{_hint(name, catalog.SKLEARN_DATASETS)};"
                    f" available: {_or(catalog.SKLEARN_DATASETS)}",
                )
            ]
    elif source.startswith("file://"):
        path = source.removeprefix("file://")
        if not path.lower().endswith((".csv", ".parquet", ".pq")):
            return [SpecError("dataset.source", source, "file:// sources must be .csv or .parquet")]
    elif re.match(r"^[a-z][a-z0-9+]*://", source):
        scheme = source.split("://", 1)[0]
        return [
            SpecError(
                "dataset.source",
                source,
                f"{scheme}:// sources are not supported yet; use sklearn://NAME or "
                "file://PATH (csv or parquet)",
            )
        ]
    return []


def _metric_errors(data: dict[str, Any], task: str) -> list[SpecError]:
    errors = []
    produced = catalog.METRICS_BY_TASK[task]
    metrics = _get(data, "evaluation", "metrics")
    if isinstance(metrics, list):
        for i, metric in enumerate(metrics):
            if metric not in produced:
                errors.append(
                    SpecError(
                        f"evaluation.metrics[{i}]",
                        metric,
                        f"not a {task} metric{_hint(metric, produced)}; {task} produces {_or(produced)}",
                    )
                )
    thresholds = _get(data, "evaluation", "thresholds")
    if isinstance(thresholds, dict):
        for metric, value in thresholds.items():
            if metric not in produced:
                errors.append(
                    SpecError(
                        f"evaluation.thresholds.{metric}",
                        value,
                        f"{metric} is not a {task} metric{_hint(metric, produced)}; "
                        f"{task} produces {_or(produced)}",
                    )
                )
            elif (
                _is_number(value)
                and metric not in catalog.LOWER_IS_BETTER
                and (metric in ("accuracy", "precision", "recall", "f1", "roc_auc") and not 0 <= value <= 1)
            ):
                errors.append(
                    SpecError(f"evaluation.thresholds.{metric}", value, "a fraction between 0 and 1")
                )
    objective = _get(data, "tuning", "objective")
    if isinstance(objective, str) and objective not in produced:
        errors.append(
            SpecError(
                "tuning.objective", objective, f"{task} produces {_or(produced)}{_hint(objective, produced)}"
            )
        )
    return errors


#: Sections the grammar accepts but no stage of the workflow acts on yet: refused, not ignored.
_NOT_YET = {
    ("tuning",): "hyperparameter tuning is not available yet; remove the tuning section",
    ("environment",): "reinforcement learning is not available yet",
    ("evaluation", "explainability"): "SHAP explanations are not available yet; remove it",
    ("evaluation", "fairness"): "fairness checks are not available yet; remove it",
    ("deployment",): "deployment is not available yet; remove the deployment section "
    "(the model is registered as the challenger)",
    ("retraining", "triggers"): "automatic retraining triggers are not available yet",
}


def _unsupported_section_errors(data: dict[str, Any]) -> list[SpecError]:
    errors = []
    for keys, message in _NOT_YET.items():
        value = _get(data, *keys)
        if value is not _MISSING and value is not None:
            errors.append(SpecError(".".join(keys), value, message))
    return errors


def _deployment_errors(data: dict[str, Any]) -> list[SpecError]:
    errors = []
    steps = _get(data, "deployment", "canary", "steps")
    if isinstance(steps, list) and all(isinstance(s, int) for s in steps):
        increasing = all(b > a for a, b in zip(steps, steps[1:], strict=False))
        if not steps or steps[0] <= 0 or steps[-1] != 100 or not increasing:
            errors.append(
                SpecError(
                    "deployment.canary.steps",
                    steps,
                    "strictly increasing percentages in 1..100 ending at 100",
                )
            )
    scaling = _get(data, "deployment", "auto_scaling")
    if isinstance(scaling, dict):
        low, high = scaling.get("min_instances", 1), scaling.get("max_instances", 4)
        if isinstance(low, int) and isinstance(high, int) and high < low:
            errors.append(
                SpecError(
                    "deployment.auto_scaling.max_instances", high, f"must be at least min_instances ({low})"
                )
            )
    return errors


def _validate_hyperparameters(data: dict[str, Any]) -> tuple[dict[str, Any], list[SpecError]]:
    raw = data.get("hyperparameters", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, [SpecError("hyperparameters", raw, "a mapping of hyperparameter names to values")]
    model = HYPERPARAMETER_MODELS.get(str(data.get("algorithm")))
    if model is None:
        return dict(raw), []
    try:
        return model.model_validate(raw).model_dump(mode="json"), []
    except ValidationError as err:
        return {}, _from_pydantic(err, model, ("hyperparameters",))


def _from_pydantic(err: ValidationError, root: type[BaseModel], prefix: tuple[str, ...]) -> list[SpecError]:
    out = []
    for item in err.errors(include_url=False):
        loc = tuple(str(p) for p in item["loc"])
        # pydantic adds a union-member tag to loc (e.g. "float", "literal['sqrt','log2']").
        loc = tuple(p for p in loc if not _is_union_tag(p))
        path = _format_path(prefix + loc)
        value = item.get("input", _MISSING)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _fields_at(root, loc[:-1])
            message = f"unknown key '{loc[-1]}'{_hint(loc[-1], allowed)} Allowed keys: {', '.join(allowed)}"
            value = MISSING
        elif kind == "missing":
            value = _MISSING
            message = "required"
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            options = re.findall(r"'([^']*)'", expected)
            message = f"expected one of {expected}{_hint(str(value), options)}"
        elif kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_HELP:
            message = _PATTERN_HELP[loc[-1]]
        else:
            message = item["msg"].removeprefix("Value error, ")
        out.append(SpecError(path or "(spec)", value, message))
    return _merge_union_errors(out)


_PATTERN_HELP = {
    "model_name": "1 to 63 letters, digits and single hyphens, starting and ending with a letter or digit",
    "name": "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit",
    "schedule": "a rate(...) or cron(...) expression, e.g. rate(7 days)",
    "instance_type": "a SageMaker instance type such as ml.m5.xlarge",
}


def _is_union_tag(part: str) -> bool:
    return (
        part in ("int", "float", "bool", "str", "none")
        or part.startswith(("literal[", "list[", "dict[", "function-"))
        or part.endswith("Spec")
    )


def _merge_union_errors(errors: list[SpecError]) -> list[SpecError]:
    """Union fields yield one error per member; keep one line per path joining the messages."""
    merged: dict[str, SpecError] = {}
    for e in errors:
        if e.path in merged and merged[e.path].message != e.message:
            old = merged[e.path]
            merged[e.path] = SpecError(e.path, old.value, f"{old.message}, or {e.message.lower()}")
        else:
            merged.setdefault(e.path, e)
    return list(merged.values())


def _fields_at(root: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    model: Any = root
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _format_path(loc: tuple[str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path


def _hint(value: str, choices: Any) -> str:
    """Return ``; did you mean 'X'?`` for the closest choice (case-insensitive), or ``""``."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


def _or(options: Any) -> str:
    options = list(options)
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
