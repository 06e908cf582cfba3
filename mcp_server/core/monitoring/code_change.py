"""The code-change retraining trigger (FR-025): which pushes retrain which models. Pure.

A push to the repository's default branch retrains a model whose spec sets
``retraining.triggers.code_change`` when it touches the code that model is built and served
with, under ``training_containers/``:

- the folders every model goes through: ``common/`` (the training contract and metrics),
  ``preparation/``, ``evaluation/`` and ``inference/``;
- the algorithm's own family folder (``catalog.FAMILY_BY_ALGORITHM``): ``sklearn/``,
  ``xgboost/``, ``pytorch/`` or ``rl/``.

A push to ``training_containers/pytorch/`` therefore retrains the neural networks only, and
one to ``training_containers/monitoring/`` retrains nothing: the monitoring job does not change
a model.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcp_server.core.spec.catalog import FAMILY_BY_ALGORITHM

#: The folder whose code builds and serves the models.
CONTAINERS = "training_containers/"

#: Folders under ``training_containers/`` that every model's pipeline runs.
SHARED_FOLDERS: tuple[str, ...] = ("common", "preparation", "evaluation", "inference")

#: Paths listed in a trigger's reason before "and N more".
LISTED_PATHS = 5


def model_code_folders(algorithm: str) -> tuple[str, ...]:
    """The folders (``training_containers/{name}/``) whose change retrains a model of ``algorithm``.

    Raises:
        KeyError: an algorithm the catalog does not know.
    """
    return tuple(f"{CONTAINERS}{name}/" for name in (*SHARED_FOLDERS, FAMILY_BY_ALGORITHM[algorithm]))


def touches_containers(paths: Iterable[str]) -> bool:
    """Whether any path is under ``training_containers/`` (a push worth looking at)."""
    return any(path.startswith(CONTAINERS) for path in paths)


def model_code_changes(paths: Iterable[str], algorithm: str) -> list[str]:
    """The paths, in order, that change the code of a model of ``algorithm`` (see the module)."""
    folders = model_code_folders(algorithm)
    return [path for path in paths if path.startswith(folders)]


def code_change_reason(changed: list[str], commit: str, branch: str, pusher: str) -> str:
    """The trigger's reason: ``push 1a2b3c4 to main by alice changed training_containers/... (+N more)``.

    Args:
        changed: the paths that matter to the model (non-empty).
        commit: the pushed head commit (its first 7 characters are shown).
        branch: the branch pushed to.
        pusher: who pushed.
    """
    shown = ", ".join(changed[:LISTED_PATHS])
    more = f" and {len(changed) - LISTED_PATHS} more" if len(changed) > LISTED_PATHS else ""
    return f"push {commit[:7]} to {branch} by {pusher} changed {shown}{more}"
