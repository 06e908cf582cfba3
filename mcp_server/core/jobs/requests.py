"""Names and requests of the jobs a run starts. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from mcp_server.core.models import DatasetRef, TrainingJobRequest
from mcp_server.core.spec.schema import TrainingSpec

_NAME = re.compile(r"[^a-zA-Z0-9-]+")


def job_name(execution_name: str, attempt: int, kind: str = "train", max_length: int = 63) -> str:
    """Return a SageMaker-valid job name (at most 63 characters) unique per execution and attempt.

    Args:
        execution_name: the workflow execution's name.
        attempt: the attempt number, 1-based.
        kind: a short job kind (``train``, ``eval``, ``tune``).
        max_length: the longest name allowed: 63 for training and processing jobs, 32 for
            hyperparameter tuning jobs (SageMaker API reference, ``HyperParameterTuningJobName``).

    Returns:
        ``{execution}-{kind}-a{attempt}``; a long execution name is shortened and suffixed with an
        8-digit hash of the full name so two executions never share a job name.
    """
    suffix = f"-{kind}-a{attempt}"
    base = _NAME.sub("-", execution_name).strip("-")
    if len(base) + len(suffix) > max_length:
        digest = hashlib.sha256(execution_name.encode()).hexdigest()[:8]
        base = f"{base[: max_length - len(suffix) - 9].rstrip('-')}-{digest}"
    return f"{base}{suffix}"


def training_request(
    spec: TrainingSpec, dataset: DatasetRef, name: str, experiment: str, tags: dict[str, str]
) -> TrainingJobRequest:
    """Build the training job request for ``spec`` on the prepared ``dataset``.

    Args:
        spec: the validated spec (task, algorithm, hyperparameters, preprocessing, compute).
        dataset: the prepared dataset; its train and validation splits become channels.
        name: the job name (see ``job_name``).
        experiment: the tracking experiment.
        tags: lineage tags (issue, execution, spec_hash, data_version).

    Returns:
        The request; channels are ``train`` and, when the dataset has one, ``validation``.
    """
    channels = {k: v for k, v in dataset.splits.items() if k in ("train", "validation")}
    return TrainingJobRequest(
        job_name=name,
        task=spec.task,
        algorithm=spec.algorithm,
        hyperparameters=dict(spec.hyperparameters),
        seed=spec.dataset.split.seed if spec.dataset else 0,
        preprocessing=spec.preprocessing,
        target=dataset.target,
        feature_types=dataset.feature_types,
        channels=channels,
        environment=spec.environment,
        compute=spec.compute,
        experiment=experiment,
        tags=tags,
    )


def container_hyperparameters(request: TrainingJobRequest) -> dict[str, Any]:
    """The hyperparameters a training container reads, before SageMaker's string encoding.

    The algorithm's own hyperparameters plus the reserved keys the programs in
    ``training_containers/`` read: ``_algorithm``, ``_task``, ``_target``, ``_preprocessing``,
    ``_feature_types``, ``_seed`` and, for control tasks, ``_environment``.
    """
    environment = {"_environment": request.environment.model_dump(mode="json")} if request.environment else {}
    return {
        **request.hyperparameters,
        "_algorithm": request.algorithm,
        "_task": request.task,
        "_target": request.target,
        "_preprocessing": request.preprocessing.model_dump(mode="json"),
        "_feature_types": request.feature_types,
        "_seed": request.seed,
        **environment,
    }


def encode_hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """Encode each value as a JSON string: SageMaker passes hyperparameters as a string map."""
    return {key: json.dumps(value) for key, value in values.items()}
