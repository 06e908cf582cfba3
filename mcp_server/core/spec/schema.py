"""The training spec users write in an issue, as pydantic models, and its validation.

``validate_spec`` turns a plain mapping (from an issue form or a YAML block) into a normalised
``TrainingSpec`` or raises ``SpecValidationError`` carrying *every* problem found, each with the
field path, the value received and what is allowed. Pure: no I/O.

The schema is documented in the README ("Writing a training request"), including the optional
top-level ``model_name`` (the registered model's name; derived from the dataset and task when
absent).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mcp_server.core.spec import catalog
from mcp_server.core.spec.catalog import Algorithm, ModelType, Task
from mcp_server.core.spec.errors import (
    MISSING,
    SpecError,
    SpecValidationError,
    dedupe,
    from_pydantic,
    hint,
)
from mcp_server.core.spec.hyperparameters import HYPERPARAMETER_MODELS
from mcp_server.core.spec.rules import cross_field_errors

#: Column, feature and environment names: characters at most.
MAX_NAME_CHARS = 256
#: The largest seed (numpy and scikit-learn take 32-bit seeds).
MAX_SEED = 2**32 - 1

__all__ = ["MISSING", "SpecError", "SpecValidationError", "TrainingSpec", "validate_spec"]


class _Section(BaseModel):
    # strict: YAML `true` is not an integer and "5" is not a number; ints still count as floats.
    # No NaN or infinity: a threshold or a fraction must be a real number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SplitSpec(_Section):
    """How the dataset is split; fractions of the rows, summing to 1."""

    train: float = Field(0.7, gt=0, lt=1)
    validation: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    stratify: bool = Field(True, description="stratify on the target (classification only)")
    seed: int = Field(42, ge=0, le=MAX_SEED, description="fits in 32 bits, as numpy's seeds")


class DatasetSpec(_Section):
    """Where the data comes from and which column is the target."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    source: str = Field(max_length=2048)
    target: str | None = Field(None, min_length=1, max_length=MAX_NAME_CHARS)
    split: SplitSpec = SplitSpec()

    @field_validator("source")
    @classmethod
    def _source_scheme(cls, value: str) -> str:
        schemes = ("sklearn://", "file://", "s3://")
        if value.startswith("file://"):
            segments = unquote(value.removeprefix("file://")).replace("\\", "/").split("/")
            if ".." in segments or "\x00" in value:
                raise ValueError(
                    "a file:// path may not climb out with '..'; use file://data/NAME.csv or "
                    "file://examples/data/NAME.csv (relative to the project folder) or a file under "
                    "a folder listed in MLOPS_DATA_ROOTS"
                )
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
    k: int = Field(20, ge=1, le=100_000)


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
    values: list[Any] | None = Field(None, max_length=1000)


class TuningSpec(_Section):
    """Hyperparameter optimisation."""

    strategy: Literal["grid", "random", "bayesian"] = "bayesian"
    objective: str
    direction: Literal["maximize", "minimize"] | None = None
    max_trials: int = Field(20, ge=1, le=1000)
    parallel_trials: int = Field(1, ge=1, le=64)
    search_space: dict[str, SearchParameter] = Field(max_length=50)


class EnvironmentSpec(_Section):
    """A Gymnasium environment for reinforcement learning (``gymnasium.make(name)``).

    ``total_timesteps`` bounds training (environment steps); training also stops once the mean
    training episode return reaches ``stop_mean_return``. The evaluation then plays
    ``evaluation_episodes`` greedy episodes.
    """

    name: str = Field(
        min_length=1, max_length=MAX_NAME_CHARS, description="a registered Gymnasium id, e.g. CartPole-v1"
    )
    total_timesteps: int = Field(100_000, ge=1, le=100_000_000)
    stop_mean_return: float | None = Field(
        None, description="stop once the mean training episode return reaches this"
    )
    evaluation_episodes: int = Field(20, ge=1, le=10_000)


class FairnessSpec(_Section):
    """Group fairness check on a sensitive feature (a column of the dataset).

    ``metric`` is compared across the feature's groups; the largest difference between groups
    must not exceed ``max_difference``. Default: ``selection_rate`` (demographic parity) for
    classification, ``mae`` for regression.
    """

    sensitive_feature: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    max_difference: float = Field(0.1, ge=0)
    metric: Literal["selection_rate", "accuracy", "recall", "precision", "f1", "mae", "rmse"] | None = None


class EvaluationSpec(_Section):
    """Which metrics to report and the judge's thresholds."""

    metrics: list[str] | None = Field(None, max_length=50)
    thresholds: dict[str, float] = Field(default_factory=dict, max_length=50)
    explainability: Literal["shap"] | None = None
    fairness: FairnessSpec | None = None


class CanarySpec(_Section):
    """Canary: the new variant's share of traffic, percent, at each step, and the bake between steps.

    Attributes:
        steps: strictly increasing percentages in 1..100 ending at 100.
        interval_s: seconds each step bakes before the alarms are checked.
    """

    steps: list[int] = Field(default_factory=lambda: [10, 50, 100], max_length=20)
    interval_s: int = Field(60, ge=1, le=86_400)


class LinearSpec(_Section):
    """Linear: traffic moves to the new variant in equal steps of ``step_percent``.

    Attributes:
        step_percent: the share added at each step, percent (25 gives 25, 50, 75, 100).
        interval_s: seconds each step bakes before the alarms are checked.
    """

    step_percent: int = Field(25, ge=1, le=100)
    interval_s: int = Field(60, ge=1, le=86_400)


class AbSpec(_Section):
    """A/B: the champion and the challenger serve side by side at fixed weights.

    Attributes:
        challenger_percent: the challenger's share of traffic, percent.
        interval_s: seconds both variants serve before their metrics are compared.
    """

    challenger_percent: int = Field(50, ge=1, le=99)
    interval_s: int = Field(300, ge=1, le=86_400)


class BlueGreenSpec(_Section):
    """Blue/green: the new fleet takes all traffic at once; the old one is kept for ``interval_s``.

    Attributes:
        interval_s: seconds the old fleet is kept (the bake) before it is removed; an alarm
            during it switches back.
    """

    interval_s: int = Field(60, ge=1, le=3_600)


class RollbackSpec(_Section):
    """Alarm limits that roll a deployment back (FR-020).

    Attributes:
        error_rate: the largest share of 5xx answers, a fraction in 0..1.
        p95_latency_ms: the largest 95th-percentile latency, milliseconds.
    """

    error_rate: float = Field(0.01, ge=0, le=1)
    p95_latency_ms: float = Field(100, gt=0, le=60_000)


class AutoScalingSpec(_Section):
    """Endpoint auto scaling: target tracking on ``SageMakerVariantInvocationsPerInstance``."""

    min_instances: int = Field(1, ge=1, le=100)
    max_instances: int = Field(4, ge=1, le=100)
    target_invocations_per_instance: int = Field(100, ge=1, le=1_000_000)


class ServerlessSpec(_Section):
    """SageMaker Serverless Inference (``ServerlessConfig``).

    Attributes:
        memory_mb: 1024 to 6144 in steps of 1024 (SageMaker's ``MemorySizeInMB``).
        max_concurrency: 1 to 200 concurrent invocations (``MaxConcurrency``).
    """

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(5, ge=1, le=200)


class DeploymentSpec(_Section):
    """Where and how a passing model is deployed.

    Attributes:
        target: ``local`` (an HTTP server process on 127.0.0.1) or ``sagemaker_endpoint``.
        endpoint_name: the endpoint; the registered model's name when absent.
        strategy: ``direct``, ``ab``, ``canary``, ``linear`` or ``blue_green``.
        canary, linear, ab, blue_green: the chosen strategy's settings (only that one may be set).
        rollback_on: the alarm limits checked after each traffic step.
        validation_traffic: replay the held-out test split against the endpoint during each
            check, so a step is judged on real requests even when nobody calls.
        data_capture: the share of requests captured, percent (0 turns capture off).
        instance_type, instance_count: the SageMaker instances of the new variant.
        auto_scaling: target tracking on invocations per instance (SageMaker).
        serverless: SageMaker Serverless Inference instead of instances.
    """

    target: Literal["local", "sagemaker_endpoint"] = "local"
    endpoint_name: str | None = Field(None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    strategy: Literal["direct", "ab", "canary", "linear", "blue_green"] = "direct"
    canary: CanarySpec | None = None
    linear: LinearSpec | None = None
    ab: AbSpec | None = None
    blue_green: BlueGreenSpec | None = None
    rollback_on: RollbackSpec = RollbackSpec()
    validation_traffic: bool = True
    data_capture: float = Field(100, ge=0, le=100)
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(1, ge=1, le=100)
    auto_scaling: AutoScalingSpec | None = None
    serverless: ServerlessSpec | None = None


class AlertChannelsSpec(_Section):
    """Where a monitoring alert goes (FR-023); each channel's secrets come from the deployment.

    Attributes:
        github: a comment on the model's issue, or a new issue when that one is closed.
        slack: the Slack incoming webhook of ``MLOPS_SLACK_WEBHOOK_URL`` (on AWS, its secret).
        email: addresses mailed through the SMTP server of ``MLOPS_SMTP_HOST``.
        sns: the stack's SNS topic (AWS only; ignored locally, where there is no topic).
    """

    github: bool = True
    slack: bool = False
    email: list[str] = Field(default_factory=list, max_length=20)
    sns: bool = False

    @field_validator("email")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if len(address) > 254 or not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+\.[A-Za-z]{2,}", address):
                raise ValueError(f"{address[:80]!r} is not an e-mail address like ml-team@example.com")
        return addresses


class MonitoringSpec(_Section):
    """How a deployed model is watched (FR-021 to FR-024).

    Attributes:
        schedule: when the monitoring job runs, ``rate(...)`` or ``cron(...)`` as EventBridge
            writes them (``core.monitoring.schedule``).
        drift_psi: a feature whose PSI against the training baseline exceeds it has drifted and
            raises an alert (0.2: the usual "significant shift" reading of PSI).
        metric_floor: metric -> the lowest value model-quality monitoring accepts on labelled
            captured rows; below it, an alert.
        error_rate: the largest share of 5xx answers over the window, a fraction in 0..1.
        p95_latency_ms: the largest 95th-percentile latency over the window, milliseconds.
        alerts: the channels alerts go to.
    """

    schedule: str = Field("rate(1 hour)", max_length=256)
    drift_psi: float = Field(0.2, gt=0, le=10)
    metric_floor: dict[str, float] = Field(default_factory=dict, max_length=50)
    error_rate: float | None = Field(None, ge=0, le=1)
    p95_latency_ms: float | None = Field(None, gt=0, le=60_000)
    alerts: AlertChannelsSpec = AlertChannelsSpec()


class TriggersSpec(_Section):
    """What starts a retraining run by itself (FR-025).

    Attributes:
        schedule: retrain on this ``rate(...)``/``cron(...)`` expression.
        drift_psi: retrain when a feature's PSI exceeds it (needs a monitoring section).
        metric_floor: retrain when model-quality monitoring finds a metric below its floor.
        data_change: retrain when the dataset's source changes (a ``file://`` file's content
            hash, an S3 object's version).
        code_change: retrain when a push to the default branch changes the model's code under
            ``training_containers/`` (``core.monitoring.code_change``).
    """

    schedule: str | None = Field(None, max_length=256)
    drift_psi: float | None = Field(None, gt=0, le=10)
    metric_floor: dict[str, float] = Field(default_factory=dict, max_length=50)
    data_change: bool = False
    code_change: bool = False


class RetrainingSpec(_Section):
    """The retry budget, the automatic retraining triggers, and whether feedback joins the data.

    Attributes:
        max_attempts: attempts of one run (operator retries), and triggered retrains a day.
        triggers: what starts a retrain run by itself.
        feedback: a triggered retrain adds the endpoint's labelled captured rows (captured
            requests whose inference id has ground truth, from the last monitoring job) to the
            dataset before it is cleaned and split (FR-028).
    """

    max_attempts: int = Field(3, ge=1, le=10)
    triggers: TriggersSpec | None = None
    feedback: bool = False


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
    hyperparameters: dict[str, Any] = Field(default_factory=dict, max_length=100)
    tuning: TuningSpec | None = None
    environment: EnvironmentSpec | None = None
    evaluation: EvaluationSpec = EvaluationSpec()
    deployment: DeploymentSpec | None = None
    monitoring: MonitoringSpec | None = None
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
    def endpoint_name(self) -> str | None:
        """The deployment's endpoint (``deployment.endpoint_name``, else the model's name), or None."""
        if self.deployment is None:
            return None
        return self.deployment.endpoint_name or self.registered_model_name

    @property
    def metrics(self) -> list[str]:
        """The metrics to report: the listed ones plus every thresholded one, in order."""
        listed = list(self.evaluation.metrics or catalog.DEFAULT_METRICS_BY_TASK[self.task])
        return listed + [m for m in self.evaluation.thresholds if m not in listed]

    def spec_hash(self) -> str:
        """Return the first 12 hex digits of the SHA-256 of the normalised spec's canonical JSON."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def validate_spec(data: Any, environments: Callable[[], Collection[str]] | None = None) -> TrainingSpec:
    """Validate a raw spec mapping and return the normalised ``TrainingSpec``.

    Normalisation fills every default (including the algorithm's hyperparameter defaults) and
    derives ``dataset.name`` from the source when it is absent.

    Args:
        data: the spec as plain data (a mapping, as parsed from YAML or an issue form).
        environments: returns the registered Gymnasium ids; called only when the spec names an
            environment, whose name must then be one of them. None skips that check (this module
            does no I/O; callers pass ``backends.environments.registered_environments``).

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
        errors.extend(from_pydantic(err, TrainingSpec, ()))
    errored = {e.path for e in errors}
    errors.extend(e for e in cross_field_errors(data) if e.path not in errored)
    hyperparameters, hp_errors = _validate_hyperparameters(data)
    errors.extend(e for e in hp_errors if e.path not in errored)
    errors.extend(e for e in _environment_errors(data, environments) if e.path not in errored)
    if errors or spec is None:
        raise SpecValidationError(dedupe(errors))
    updates: dict[str, Any] = {"hyperparameters": hyperparameters}
    if spec.dataset is not None and spec.dataset.name is None:
        updates["dataset"] = spec.dataset.model_copy(update={"name": _name_from_source(spec.dataset.source)})
    return spec.model_copy(update=updates)


def _environment_errors(
    data: dict[str, Any], environments: Callable[[], Collection[str]] | None
) -> list[SpecError]:
    name = data["environment"].get("name") if isinstance(data.get("environment"), dict) else None
    if environments is None or not isinstance(name, str) or not name:
        return []
    registered = environments()
    if name in registered:
        return []
    return [SpecError("environment.name", name, unknown_environment_reason(name, registered))]


def unknown_environment_reason(name: str, registered: Collection[str]) -> str:
    """Why ``name`` is refused: not registered, what ids look like, and the closest one."""
    return (
        "not a registered Gymnasium environment (use an id of gymnasium.registry, e.g. CartPole-v1)"
        + hint(name, registered)
    )


def _name_from_source(source: str) -> str:
    tail = source.split("://", 1)[-1].rstrip("/").split("/")[-1].split("?")[0]
    stem = tail.rsplit(".", 1)[0] if "." in tail else tail
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")[:63] or "dataset"


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
        return {}, from_pydantic(err, model, ("hyperparameters",))
