"""Gymnasium environments: create one by id and check that the program can train on its spaces.

The algorithms here (PPO, DQN, A3C) train a fully connected network on a flat observation vector
(a one-dimensional ``gymnasium.spaces.Box``) and pick one of ``n`` actions
(``gymnasium.spaces.Discrete``). Anything else is refused before training starts, with the
reason and what would work.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import gymnasium
from gymnasium import spaces

#: How many close ids an unknown id's message suggests.
_SUGGESTIONS = 3


@dataclass(frozen=True)
class EnvironmentInfo:
    """What the network needs to know about an environment.

    Attributes:
        name: the Gymnasium id, e.g. ``CartPole-v1``.
        observation_shape: shape of one observation, e.g. ``(4,)``.
        n_actions: number of discrete actions.
        max_episode_steps: the registration's step limit (truncation), or None.
    """

    name: str
    observation_shape: tuple[int, ...]
    n_actions: int
    max_episode_steps: int | None


def make_environment(name: str, **kwargs: Any) -> gymnasium.Env:
    """Create the environment ``name`` (``gymnasium.make``).

    Args:
        name: a registered Gymnasium id.
        kwargs: passed to ``gymnasium.make`` (e.g. ``render_mode``).

    Returns:
        The environment, not yet reset.

    Raises:
        ValueError: the id is not registered (the message lists the closest registered ids,
            by ``difflib.get_close_matches``), or Gymnasium cannot create it (a missing extra
            such as Box2D or MuJoCo).
    """
    if name not in gymnasium.registry:
        close = difflib.get_close_matches(name, list(gymnasium.registry), n=_SUGGESTIONS, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(
            f"environment {name!r} is not a registered Gymnasium environment (gymnasium "
            f"{gymnasium.__version__}); use an id of gymnasium.registry such as CartPole-v1{hint}"
        )
    try:
        return gymnasium.make(name, **kwargs)
    except Exception as err:  # missing extras (Box2D, MuJoCo), bad registration arguments
        raise ValueError(f"Gymnasium cannot create environment {name!r}: {err}") from err


def check_environment(name: str, algorithm: str) -> EnvironmentInfo:
    """Create ``name`` once and check that ``algorithm`` can train on its spaces.

    Args:
        name: a registered Gymnasium id.
        algorithm: ``ppo``, ``dqn`` or ``a3c`` (named in the error message).

    Returns:
        The observation shape, number of actions and step limit.

    Raises:
        ValueError: unknown id (see ``make_environment``), an observation space that is not a
            one-dimensional Box, or an action space that is not Discrete (e.g. the continuous
            actions of Pendulum-v1).
    """
    env = make_environment(name)
    try:
        observation, action = env.observation_space, env.action_space
        max_steps = env.spec.max_episode_steps if env.spec else None
    finally:
        env.close()
    if not isinstance(action, spaces.Discrete):
        raise ValueError(
            f"{algorithm} in this program needs a discrete action space (gymnasium.spaces.Discrete); "
            f"{name} has {action}. Choose an environment with discrete actions, e.g. CartPole-v1, "
            "Acrobot-v1 or MountainCar-v0"
        )
    if not isinstance(observation, spaces.Box) or len(observation.shape) != 1:
        raise ValueError(
            f"{algorithm} in this program needs a flat observation vector (a one-dimensional "
            f"gymnasium.spaces.Box); {name} has {observation}"
        )
    return EnvironmentInfo(name, tuple(int(d) for d in observation.shape), int(action.n), max_steps)
