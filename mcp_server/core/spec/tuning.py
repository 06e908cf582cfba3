"""Rules of the ``tuning:`` section (hyperparameter optimisation), and how a trial is scored. Pure.

``tuning_errors`` checks a raw spec mapping's tuning section and is called by
``spec_rules.cross_field_errors``; every error names the field path (e.g.
``tuning.search_space.max_depth.high``), the value received and what is allowed. The rules:

- the search space is not empty, and each name is a hyperparameter of the algorithm (with a
  "did you mean");
- ``int`` and ``float`` parameters have ``low`` < ``high``, each a value the algorithm's
  hyperparameter model (``HYPERPARAMETER_MODELS``) accepts, so the library's own ranges apply;
  ``int`` bounds are whole numbers; ``log: true`` needs ``low`` > 0 (a logarithmic scale, in
  Optuna and in SageMaker's ``Logarithmic`` scaling alike);
- ``categorical`` parameters have 1 to 30 distinct ``values`` (SageMaker's ``ParameterValues``
  limit), each accepted by the hyperparameter model and at most 256 characters once
  JSON-encoded (SageMaker's ``ParameterValue`` limit);
- grid search takes categorical parameters only and launches one training job per distinct
  combination of their values, ``MaxNumberOfTrainingJobs`` being that number when given (SageMaker
  Developer Guide, "Understand the hyperparameter tuning strategies available in Amazon SageMaker
  AI", Grid search; paraphrased, the page was not in the offline documentation). The grid
  size therefore caps the trials, and ``max_trials`` must be at least the grid size;
- ``max_trials`` is at most ``MAX_TRIALS`` so that the trial list, which travels in the
  workflow's state, stays far below Step Functions' 256 KiB payload limit;
- classification and regression need a validation split: a trial's objective is its
  ``validation_<metric>`` line (see ``objective_metric``).

That the objective is a metric of the task is checked by ``spec_rules`` with the other metrics.
"""

from __future__ import annotations

import json
import math
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from mcp_server.core.spec import catalog
from mcp_server.core.spec.errors import MISSING, SpecError, hint
from mcp_server.core.spec.hyperparameters import HYPERPARAMETER_MODELS

#: Most trials one search may run (the trial list travels in the workflow state: 256 KiB cap).
MAX_TRIALS = 100
#: Most values of one categorical parameter (SageMaker's ``ParameterValues``: 1 to 30 items).
MAX_CATEGORICAL_VALUES = 30
#: Longest categorical value once JSON-encoded (SageMaker's ``ParameterValue``: 256 characters).
MAX_VALUE_CHARS = 256
_GRID_RULE = (
    "grid search supports categorical parameters only (SageMaker's grid strategy); give this "
    "parameter type: categorical with the values to try, or use strategy random or bayesian"
)


def objective_metric(task: str, objective: str, has_validation: bool = True) -> str:
    """Return the metric line a trial is scored on.

    Args:
        task: the spec's task.
        objective: the tuning objective, a metric of the task (e.g. ``f1``).
        has_validation: whether the trials get a validation split (a validation fraction above 0).

    Returns:
        ``validation_<objective>`` for classification and regression (``tuning_errors``
        requires a validation split) and for clustering with a validation split (the clusterer
        labels the validation rows, so they are scored as unseen data); ``train_<objective>``
        otherwise: dimensionality reduction and reinforcement learning print no validation
        figures (t-SNE cannot embed new rows, reinforcement learning has no dataset).
    """
    validated = task in catalog.SUPERVISED_TASKS or (task == "clustering" and has_validation)
    return f"{'validation' if validated else 'train'}_{objective}"


def grid_size(search_space: dict[str, Any]) -> int:
    """Return the number of combinations of a categorical search space (1 for an empty one).

    Args:
        search_space: name -> parameter (a mapping or a ``SearchParameter``) with ``values``.
    """
    sizes = [len(_get(p, "values") or []) for p in search_space.values()]
    return math.prod(sizes)


def trial_count(strategy: str, max_trials: int, search_space: dict[str, Any]) -> int:
    """Return how many trials a search runs: the grid size for grid search, else ``max_trials``."""
    return grid_size(search_space) if strategy == "grid" else max_trials


def tuning_errors(data: dict[str, Any]) -> list[SpecError]:  # noqa: C901
    """Return every error of the raw spec's ``tuning`` section (see the module docstring).

    Args:
        data: the raw spec mapping; rules run only on the fields that are well-formed.

    Returns:
        The errors, each with its field path, the value received and what is allowed.
    """
    tuning = data.get("tuning")
    if not isinstance(tuning, dict):
        return []
    errors: list[SpecError] = []
    algorithm = str(data.get("algorithm"))
    model = HYPERPARAMETER_MODELS.get(algorithm)
    strategy = tuning.get("strategy", "bayesian")
    space = tuning.get("search_space")
    if isinstance(space, dict) and not space:
        errors.append(
            SpecError(
                "tuning.search_space",
                space,
                "name at least one hyperparameter to search, e.g. {max_depth: {type: int, low: 2, high: 8}}",
            )
        )
    for name, parameter in (space or {}).items() if isinstance(space, dict) else ():
        path = f"tuning.search_space.{name}"
        if model is not None and name not in model.model_fields:
            allowed = list(model.model_fields)
            errors.append(
                SpecError(
                    path,
                    name,
                    f"{algorithm} has no hyperparameter '{name}'{hint(name, allowed)} "
                    f"Its hyperparameters: {', '.join(allowed)}",
                )
            )
            continue
        if not isinstance(parameter, dict):
            continue
        kind = parameter.get("type")
        if strategy == "grid" and kind in ("int", "float"):
            errors.append(SpecError(f"{path}.type", kind, _GRID_RULE))
        elif kind == "float" and _takes_integers(model, name):
            errors.append(SpecError(f"{path}.type", kind, f"{name} takes integers: use type int"))
        elif kind in ("int", "float"):
            errors.extend(_range_errors(path, name, kind, parameter, model))
        elif kind == "categorical":
            errors.extend(_categorical_errors(path, name, parameter, model))
    errors.extend(_size_errors(tuning, strategy, space))
    errors.extend(_validation_split_errors(data))
    return errors


def _range_errors(
    path: str, name: str, kind: str, parameter: dict[str, Any], model: type[BaseModel] | None
) -> list[SpecError]:
    errors = []
    if parameter.get("values") is not None:
        errors.append(
            SpecError(
                f"{path}.values",
                parameter["values"],
                f"only categorical parameters take values; {kind} takes low and high",
            )
        )
    bounds = {}
    for end in ("low", "high"):
        value = parameter.get(end)
        if value is None:
            errors.append(SpecError(f"{path}.{end}", MISSING, f"required for type {kind}"))
        elif not _is_number(value):
            continue  # the structural check reports it
        elif kind == "int" and not float(value).is_integer():
            errors.append(SpecError(f"{path}.{end}", value, "type int takes whole numbers"))
        else:
            number = int(value) if kind == "int" else float(value)
            problem = _value_problem(model, name, number)
            if problem:
                errors.append(SpecError(f"{path}.{end}", value, problem))
            else:
                bounds[end] = number
    low, high = bounds.get("low"), bounds.get("high")
    if low is not None and high is not None and not low < high:
        errors.append(SpecError(f"{path}.high", parameter["high"], f"must be greater than low ({low:g})"))
    if parameter.get("log") is True and low is not None and low <= 0:
        errors.append(
            SpecError(
                f"{path}.low", parameter["low"], "log: true searches a logarithmic scale, which needs low > 0"
            )
        )
    return errors


def _categorical_errors(
    path: str, name: str, parameter: dict[str, Any], model: type[BaseModel] | None
) -> list[SpecError]:
    errors = []
    for end in ("low", "high"):
        if parameter.get(end) is not None:
            errors.append(
                SpecError(
                    f"{path}.{end}", parameter[end], "categorical parameters take values, not low and high"
                )
            )
    if parameter.get("log") is True:
        errors.append(SpecError(f"{path}.log", True, "log applies to int and float parameters only"))
    values = parameter.get("values")
    if values is None or (isinstance(values, list) and not values):
        shown = MISSING if values is None else values
        return [*errors, SpecError(f"{path}.values", shown, "list the values to try, e.g. [100, 200, 400]")]
    if not isinstance(values, list):
        return errors  # the structural check reports it
    if len(values) > MAX_CATEGORICAL_VALUES:
        errors.append(
            SpecError(
                f"{path}.values", values, f"at most {MAX_CATEGORICAL_VALUES} values (SageMaker's limit)"
            )
        )
    encoded = [json.dumps(v, sort_keys=True, default=str) for v in values[:MAX_CATEGORICAL_VALUES]]
    if len(set(encoded)) != len(encoded):
        errors.append(SpecError(f"{path}.values", values, "each value once: the values must be distinct"))
    for i, value in enumerate(values[:MAX_CATEGORICAL_VALUES]):
        problem = _value_problem(model, name, value)
        if problem is None and len(encoded[i]) > MAX_VALUE_CHARS:
            problem = f"at most {MAX_VALUE_CHARS} characters once JSON-encoded (SageMaker's limit)"
        if problem:
            errors.append(SpecError(f"{path}.values[{i}]", value, problem))
    return errors


def _size_errors(tuning: dict[str, Any], strategy: Any, space: Any) -> list[SpecError]:
    max_trials = tuning.get("max_trials", 20)
    if not isinstance(max_trials, int) or isinstance(max_trials, bool):
        return []
    if max_trials > MAX_TRIALS:
        return [
            SpecError(
                "tuning.max_trials",
                max_trials,
                f"at most {MAX_TRIALS}: every trial is listed in the run's state and record",
            )
        ]
    if strategy != "grid" or not isinstance(space, dict) or not space:
        return []
    if not all(isinstance(p, dict) and isinstance(p.get("values"), list) for p in space.values()):
        return []
    size = grid_size(space)
    if size > max_trials:
        return [
            SpecError(
                "tuning.max_trials",
                max_trials,
                f"grid search runs every combination of the values, {size} here; raise max_trials "
                f"to {size} or list fewer values",
            )
        ]
    return []


def _validation_split_errors(data: dict[str, Any]) -> list[SpecError]:
    task = data.get("task")
    split = data.get("dataset", {}).get("split") if isinstance(data.get("dataset"), dict) else None
    validation = split.get("validation") if isinstance(split, dict) else None
    if task not in catalog.SUPERVISED_TASKS or validation != 0:
        return []
    objective = data["tuning"].get("objective", "the objective")
    return [
        SpecError(
            "dataset.split.validation",
            validation,
            f"tuning scores each trial on the validation split (validation_{objective}), so it cannot "
            "be 0; give it a fraction such as 0.15",
        )
    ]


def _value_problem(model: type[BaseModel] | None, name: str, value: Any) -> str | None:
    """Why the algorithm's hyperparameter model refuses ``{name: value}``, or None when it accepts it."""
    if model is None:
        return None
    try:
        model.model_validate({name: value})
    except ValidationError as err:
        message = "; ".join(e["msg"] for e in err.errors(include_url=False))
        return f"{message} ({allowed_values(model, name)})"
    return None


def _takes_integers(model: type[BaseModel] | None, name: str) -> bool:
    """Whether the hyperparameter accepts integers but refuses a fractional number."""
    return (
        model is not None
        and _value_problem(model, name, 0.5) is not None
        and any(_value_problem(model, name, whole) is None for whole in (1, 2, 100))
    )


def allowed_values(model: type[BaseModel], name: str) -> str:
    """Describe what a hyperparameter accepts from its model field: type and bounds.

    Args:
        model: a hyperparameter model of ``HYPERPARAMETER_MODELS``.
        name: one of its fields.

    Returns:
        e.g. ``max_depth takes integers >= 1 and <= 32``, or the field's description.
    """
    field = model.model_fields[name]
    symbols = {Ge: (">=", "ge"), Gt: (">", "gt"), Le: ("<=", "le"), Lt: ("<", "lt")}
    bounds = [
        f"{symbol} {getattr(item, attribute)}"
        for item in field.metadata
        for kind, (symbol, attribute) in symbols.items()
        if isinstance(item, kind)
    ]
    annotation = str(field.annotation)
    kind = "integers" if field.annotation is int or annotation == "int | None" else "numbers"
    if bounds:
        return f"{name} takes {kind} {' and '.join(bounds)}"
    return f"{name}: {field.description}" if field.description else f"see the {name} hyperparameter"


def _get(parameter: Any, key: str) -> Any:
    return parameter.get(key) if isinstance(parameter, dict) else getattr(parameter, key, None)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
