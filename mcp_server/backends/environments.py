"""Gymnasium environments: which ids are registered, and the "dataset" of a control task.

A reinforcement-learning run has no table of rows: its data is the environment. Preparing it
means checking that the id is registered (before any job starts) and versioning it by its
registration (entry point, step limit, reward threshold, keyword arguments) and the Gymnasium
version, so lineage and the data-change trigger treat a changed environment as changed data.
The same code serves the local and the AWS backends: the registry is in-process.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.schema import EnvironmentSpec, unknown_environment_reason
from mcp_server.errors import DatasetError

SCHEME = "gymnasium://"


def registered_environments() -> frozenset[str]:
    """Return every environment id registered with Gymnasium (e.g. ``CartPole-v1``)."""
    import gymnasium

    return frozenset(gymnasium.registry)


def environment_ref(environment: EnvironmentSpec) -> DatasetRef:
    """Check that the environment exists and describe it as the run's dataset.

    Args:
        environment: the spec's ``environment`` section.

    Returns:
        A DatasetRef with ``source`` ``gymnasium://ID``, ``data_version`` the first 12 hex digits
        of the SHA-256 of the registration and Gymnasium's version, no splits, ``task``
        ``control`` and one numeric feature per observation dimension (``observation_0``, ...).

    Raises:
        DatasetError: the id is not registered (with the closest registered ids), or the
            environment cannot be created.
    """
    import gymnasium

    name = environment.name
    if name not in gymnasium.registry:
        reason = unknown_environment_reason(name, list(gymnasium.registry))
        raise DatasetError(f"environment.name {name!r}: {reason}")
    registration = gymnasium.spec(name)
    try:
        env = gymnasium.make(name)
    except Exception as err:  # missing extras (Box2D, MuJoCo), bad keyword arguments, ...
        raise DatasetError(f"environment.name {name!r}: Gymnasium cannot create it ({err})") from err
    try:
        shape = getattr(env.observation_space, "shape", None) or (1,)
        dimensions = int(math.prod(shape))
        spaces = {"observation_space": str(env.observation_space), "action_space": str(env.action_space)}
    finally:
        env.close()
    identity = {
        "id": registration.id,
        "entry_point": str(registration.entry_point),
        "max_episode_steps": registration.max_episode_steps,
        "reward_threshold": registration.reward_threshold,
        "kwargs": _jsonable(registration.kwargs),
        "gymnasium": gymnasium.__version__,
        **spaces,
    }
    version = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    features = [f"observation_{i}" for i in range(dimensions)]
    return DatasetRef(
        dataset_id=f"{name}-{version}",
        name=name,
        source=f"{SCHEME}{name}",
        data_version=version,
        uri=f"{SCHEME}{name}",
        splits={},
        split_sizes={},
        task="control",
        target=None,
        feature_names=features,
        feature_types=dict.fromkeys(features, "numeric"),
        rows_raw=0,
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
