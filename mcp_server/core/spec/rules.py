"""Spec rules that span fields: task and algorithm, data sources, splits, metrics, sections.

Each rule reads the raw mapping and runs only when the fields it reads are well-formed, so one
pass reports structural and cross-field errors together. Pure.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mcp_server.core.spec import catalog
from mcp_server.core.spec.errors import MISSING, SpecError, hint, or_list
from mcp_server.core.spec.monitoring import monitoring_errors
from mcp_server.core.spec.tuning import tuning_errors


def get_path(data: Any, *keys: str) -> Any:
    """Return ``data[k1][k2]...``, or ``MISSING`` when a key is absent or a level is not a mapping."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return MISSING
        data = data[key]
    return data


def cross_field_errors(data: dict[str, Any]) -> list[SpecError]:  # noqa: C901
    """Return every cross-field error of a raw spec mapping (see the module docstring)."""
    errors: list[SpecError] = []
    model_type, algorithm = data.get("model_type"), data.get("algorithm")
    raw_task = data.get("task")
    task: str = raw_task if isinstance(raw_task, str) else ""
    task_ok = task in catalog.TASKS
    if model_type in catalog.MODEL_TYPES and task_ok:
        allowed = catalog.TASKS_BY_MODEL_TYPE[model_type]
        if task not in allowed:
            errors.append(SpecError("task", task, f"{model_type} supports the tasks {or_list(allowed)}"))
    if task_ok and algorithm in catalog.ALGORITHMS:
        allowed = catalog.ALGORITHMS_BY_TASK[task]
        if algorithm not in allowed:
            errors.append(SpecError("algorithm", algorithm, f"task {task} supports {or_list(allowed)}"))
        elif (task, algorithm) not in catalog.SUPPORTED_TRAINING:
            runnable = sorted(a for t, a in catalog.SUPPORTED_TRAINING if t == task)
            hint = (
                f"available for {task} today: {or_list(runnable)}"
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
    # A key set to null is absent: a normalised spec (every section, unset ones null) validates again.
    dataset = MISSING if data.get("dataset") is None else data["dataset"]
    if task_ok and task == "control":
        if dataset is not MISSING:
            errors.append(SpecError("dataset", dataset, "control tasks use environment, not a dataset"))
        if data.get("environment") is None:
            errors.append(SpecError("environment", MISSING, "required for the control task"))
    elif task_ok:
        if dataset is MISSING:
            errors.append(SpecError("dataset", MISSING, f"required for the {task} task"))
        if data.get("environment") is not None:
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
    errors.extend(_split_errors(get_path(data, "dataset", "split")))
    source = get_path(data, "dataset", "source")
    if isinstance(source, str):
        errors.extend(_source_errors(source))
    if task_ok:
        errors.extend(_metric_errors(data, task))
    errors.extend(_unsupported_section_errors(data))
    errors.extend(_deployment_errors(data))
    errors.extend(monitoring_errors(data, catalog.METRICS_BY_TASK.get(task, ()) if task_ok else None))
    errors.extend(_early_stopping_errors(data))
    errors.extend(_fairness_errors(data, task))
    errors.extend(_unsupervised_errors(data, task))
    errors.extend(tuning_errors(data))
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
    """A finite real number that fits a float (huge integers and NaN are left to the field checks)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


#: An S3 object a dataset can be read from: a valid bucket name, then a CSV or Parquet key.
_S3_SOURCE = re.compile(
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\x00-\x1f]+\.(csv(\.(gz|bz2|zip|xz|zst))?|parquet|pq)$",
    re.IGNORECASE,
)


def _source_errors(source: str) -> list[SpecError]:
    if source.startswith("sklearn://"):
        name = source.removeprefix("sklearn://")
        if name not in catalog.SKLEARN_DATASETS:
            return [
                SpecError(
                    "dataset.source",
                    source,
                    f"unknown scikit-learn dataset{hint(name, catalog.SKLEARN_DATASETS)};"
                    f" available: {or_list(catalog.SKLEARN_DATASETS)}",
                )
            ]
    elif source.startswith("file://"):
        path = source.removeprefix("file://")
        if not path.lower().endswith((".csv", ".parquet", ".pq")):
            return [SpecError("dataset.source", source, "file:// sources must be .csv or .parquet")]
    elif source.startswith("s3://"):
        if not _S3_SOURCE.match(source):
            return [
                SpecError(
                    "dataset.source",
                    source,
                    "s3:// sources are s3://BUCKET/KEY ending in .csv (optionally .gz, .bz2, .zip, .xz, "
                    ".zst) or .parquet; they are read in AWS mode",
                )
            ]
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
    metrics = get_path(data, "evaluation", "metrics")
    if isinstance(metrics, list):
        for i, metric in enumerate(metrics):
            if metric not in produced:
                errors.append(
                    SpecError(
                        f"evaluation.metrics[{i}]",
                        metric,
                        f"not a {task} metric{hint(metric, produced)}; {task} produces {or_list(produced)}",
                    )
                )
    thresholds = get_path(data, "evaluation", "thresholds")
    if isinstance(thresholds, dict):
        for metric, value in thresholds.items():
            if metric not in produced:
                errors.append(
                    SpecError(
                        f"evaluation.thresholds.{metric}",
                        value,
                        f"{metric} is not a {task} metric{hint(metric, produced)}; "
                        f"{task} produces {or_list(produced)}",
                    )
                )
            elif _is_number(value) and metric in catalog.FRACTION_METRICS and not 0 <= value <= 1:
                errors.append(
                    SpecError(f"evaluation.thresholds.{metric}", value, "a fraction between 0 and 1")
                )
    objective = get_path(data, "tuning", "objective")
    if isinstance(objective, str) and objective not in produced:
        errors.append(
            SpecError(
                "tuning.objective",
                objective,
                f"not a {task} metric{hint(objective, produced)}; {task} produces {or_list(produced)}",
            )
        )
    return errors


#: Sections the grammar accepts but no stage of the workflow acts on yet: refused, not ignored.
_NOT_YET: dict[tuple[str, ...], str] = {}


def _unsupported_section_errors(data: dict[str, Any]) -> list[SpecError]:
    errors = []
    for keys, message in _NOT_YET.items():
        value = get_path(data, *keys)
        if value is not MISSING and value is not None:
            errors.append(SpecError(".".join(keys), value, message))
    return errors


def _deployment_errors(data: dict[str, Any]) -> list[SpecError]:
    errors: list[SpecError] = []
    deployment = data.get("deployment")
    reason = catalog.NOT_SERVABLE.get(str(data.get("algorithm")))
    if deployment is not None and reason is not None:
        return [
            SpecError(
                "deployment",
                deployment,
                f"{reason}, so it cannot be deployed as an endpoint; remove the deployment section "
                "(the embedding of the training rows is kept as an artifact)",
            )
        ]
    if not isinstance(deployment, dict):
        return errors
    strategy = deployment.get("strategy", "direct")
    for section in STRATEGY_SECTIONS:
        if deployment.get(section) is not None and section != strategy:
            errors.append(
                SpecError(
                    f"deployment.{section}",
                    deployment[section],
                    f"settings of the {section} strategy, but the strategy is {strategy}; "
                    f"remove it or set strategy: {section}",
                )
            )
    steps = get_path(data, "deployment", "canary", "steps")
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
    scaling = get_path(data, "deployment", "auto_scaling")
    if isinstance(scaling, dict):
        low, high = scaling.get("min_instances", 1), scaling.get("max_instances", 4)
        if isinstance(low, int) and isinstance(high, int) and high < low:
            errors.append(
                SpecError(
                    "deployment.auto_scaling.max_instances", high, f"must be at least min_instances ({low})"
                )
            )
    errors.extend(_serverless_errors(deployment, strategy))
    return errors


#: The deployment keys that hold one strategy's settings (named as the strategy).
STRATEGY_SECTIONS = ("canary", "linear", "ab", "blue_green")


def _serverless_errors(deployment: dict[str, Any], strategy: Any) -> list[SpecError]:
    """SageMaker Serverless Inference has one variant and no data capture or instances.

    Source: the SageMaker Developer Guide, "Serverless Inference", feature exclusions (multiple
    production variants, data capture, Model Monitor); traffic shifting is all at once.
    """
    serverless = deployment.get("serverless")
    if serverless is None:
        return []
    errors = []
    target = deployment.get("target", "local")
    if target != "sagemaker_endpoint":
        errors.append(
            SpecError(
                "deployment.serverless",
                serverless,
                f"SageMaker Serverless Inference needs target: sagemaker_endpoint (target is {target})",
            )
        )
    if strategy not in ("direct", "blue_green"):
        errors.append(
            SpecError(
                "deployment.strategy",
                strategy,
                "a serverless endpoint has one production variant: direct or blue_green",
            )
        )
    capture = deployment.get("data_capture", 100)
    if capture not in (0, 0.0):
        errors.append(
            SpecError(
                "deployment.data_capture",
                capture,
                "0 with serverless (SageMaker Serverless Inference does not capture data)",
            )
        )
    if deployment.get("auto_scaling") is not None:
        errors.append(
            SpecError(
                "deployment.auto_scaling",
                deployment["auto_scaling"],
                "instances only; a serverless endpoint scales by max_concurrency",
            )
        )
    return errors


def _early_stopping_errors(data: dict[str, Any]) -> list[SpecError]:
    """XGBoost's early stopping watches the validation split, so it needs one."""
    rounds = get_path(data, "hyperparameters", "early_stopping_rounds")
    validation = get_path(data, "dataset", "split", "validation")
    if rounds in (MISSING, None) or validation is MISSING or validation != 0:
        return []
    return [
        SpecError(
            "hyperparameters.early_stopping_rounds",
            rounds,
            "early stopping watches the validation split, which is 0 here; give "
            "dataset.split.validation a fraction or remove early_stopping_rounds",
        )
    ]


_FAIRNESS_METRICS = {
    "classification": ("selection_rate", "accuracy", "recall", "precision", "f1"),
    "regression": ("mae", "rmse"),
}


def _fairness_errors(data: dict[str, Any], task: str) -> list[SpecError]:
    """Fairness needs a supervised task, and a metric that task produces per group."""
    fairness = get_path(data, "evaluation", "fairness")
    if not isinstance(fairness, dict) or task not in catalog.TASKS:
        return []
    if task not in _FAIRNESS_METRICS:
        return [
            SpecError("evaluation.fairness", fairness, "fairness checks need classification or regression")
        ]
    metric = fairness.get("metric")
    allowed = _FAIRNESS_METRICS[task]
    if isinstance(metric, str) and metric not in allowed:
        return [SpecError("evaluation.fairness.metric", metric, f"for {task} use {or_list(allowed)}")]
    return []


def _unsupervised_errors(data: dict[str, Any], task: str) -> list[SpecError]:
    """Clustering and dimensionality reduction have no target to predict.

    Target encoding and feature selection are fitted against that target, so they are refused
    (``dataset.target`` there only names a label column that colours the plots). t-SNE is no
    linear projection and reports no explained variance ratio.
    """
    if task not in ("clustering", "dimensionality_reduction"):
        return []
    errors = []
    encoding = get_path(data, "preprocessing", "encoding")
    if encoding == "target":
        errors.append(
            SpecError(
                "preprocessing.encoding",
                encoding,
                f"target encoding needs a target to predict and {task} has none; use onehot or label",
            )
        )
    selection = get_path(data, "preprocessing", "feature_selection")
    if selection not in (MISSING, None):
        errors.append(
            SpecError(
                "preprocessing.feature_selection",
                selection,
                f"feature selection ranks features against a target to predict and {task} has none; "
                "remove it (dimensionality reduction itself reduces the features)",
            )
        )
    if data.get("algorithm") == "tsne":
        errors.extend(_tsne_metric_errors(data))
    return errors


def _tsne_metric_errors(data: dict[str, Any]) -> list[SpecError]:
    message = "t-SNE is no linear projection and has no explained variance ratio; use trustworthiness"
    errors = []
    metrics = get_path(data, "evaluation", "metrics")
    if isinstance(metrics, list):
        errors += [
            SpecError(f"evaluation.metrics[{i}]", m, message)
            for i, m in enumerate(metrics)
            if m == "explained_variance_ratio"
        ]
    thresholds = get_path(data, "evaluation", "thresholds")
    if isinstance(thresholds, dict) and "explained_variance_ratio" in thresholds:
        errors.append(
            SpecError(
                "evaluation.thresholds.explained_variance_ratio",
                thresholds["explained_variance_ratio"],
                message,
            )
        )
    if get_path(data, "tuning", "objective") == "explained_variance_ratio":
        errors.append(SpecError("tuning.objective", "explained_variance_ratio", message))
    return errors
