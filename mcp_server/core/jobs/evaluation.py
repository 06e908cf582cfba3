"""The evaluation processing job's request check, configuration and report fields. Pure.

Both evaluation backends (a local process, a SageMaker processing job) run the same program,
``training_containers/evaluation/evaluate.py``, give it the same ``evaluation.json`` and read
the same ``report.json`` back.
"""

from __future__ import annotations

import re
from typing import Any

from mcp_server.core.models import EvaluationRequest
from mcp_server.core.spec.catalog import METRICS_BY_TASK
from mcp_server.errors import EvaluationError

#: Random seed of the program's sampling (SHAP rows and background, learning-curve subsets).
SEED = 0
#: Fields of report.json copied into the EvaluationReport as they are.
COPIED_FIELDS = (
    "metrics",
    "validation_metrics",
    "train_metrics",
    "gaps",
    "n_test",
    "n_validation",
    "class_counts",
    "shap",
    "fairness",
    "cluster_sizes",
    "details",
    "notes",
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_evaluation_request(request: EvaluationRequest) -> None:
    """Check what the program cannot: the task, the id (a folder and job name) and the metrics.

    Raises:
        EvaluationError: an unsupported task, a control task without its environment, an id
            that is not a folder name, or a metric the task does not have.
    """
    if request.task not in METRICS_BY_TASK:
        raise EvaluationError(f"task {request.task!r}: expected one of {', '.join(METRICS_BY_TASK)}")
    if request.task == "control" and request.environment is None:
        raise EvaluationError("a control task's evaluation needs the environment to play episodes in")
    if not _ID.match(request.evaluation_id):
        raise EvaluationError(
            f"evaluation_id {request.evaluation_id!r} must be a folder name: letters, "
            "digits, '.', '_' and '-'"
        )
    unknown = [m for m in request.metrics if m not in METRICS_BY_TASK[request.task]]
    if unknown:
        raise EvaluationError(
            f"unknown {request.task} metrics {unknown}; available: {', '.join(METRICS_BY_TASK[request.task])}"
        )


def program_config(request: EvaluationRequest) -> dict[str, Any]:
    """The content of ``input/config/evaluation.json`` for the request."""
    fairness = request.fairness.model_dump(mode="json") if request.fairness else None
    return {
        "evaluation_id": request.evaluation_id,
        "task": request.task,
        "algorithm": request.algorithm,
        "target": request.dataset.target,
        "metrics": list(request.metrics),
        "class_labels": request.dataset.class_labels,
        "explainability": request.explainability,
        "fairness": fairness,
        "seed": SEED,
        "environment": request.environment.model_dump(mode="json") if request.environment else None,
    }


def report_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a ``report.json`` body that the EvaluationReport takes as they are."""
    return {key: body[key] for key in COPIED_FIELDS if key in body}
