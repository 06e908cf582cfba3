"""Greedy policies loaded from a model folder, without a Ray session.

The model folder of ``training_containers.rl.train`` holds ``metadata.json`` and ``policy/``:

- PPO and DQN (``policy_format: rllib_rl_module``): RLlib's RLModule checkpoint, loaded with
  ``RLModule.from_checkpoint`` (imports ``ray.rllib``, starts nothing). PPO's greedy action is
  the argmax of ``action_dist_inputs`` (the categorical logits); DQN's ``forward_inference``
  returns the argmax-Q ``actions`` itself.
- A3C (``policy_format: a3c_torch``): ``network.json`` (sizes) and ``a3c.pt`` (the state dict);
  the greedy action is the argmax of the policy logits.

This module imports neither MLflow nor Ray at import time, so the evaluation can use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

#: The policy's folder inside the model folder.
POLICY_DIR = "policy"
_A3C_WEIGHTS = "a3c.pt"
_A3C_NETWORK = "network.json"


class GreedyPolicy(Protocol):
    """Maps a batch of observations to the action each would take greedily."""

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Return actions (n,) as int64 for observations (n, observation_size)."""
        ...


class RLModulePolicy:
    """A greedy policy over an RLlib RLModule (PPO or DQN).

    Args:
        module: the RLModule (``RLModule.from_checkpoint``).
    """

    def __init__(self, module: Any) -> None:
        """Keep the module, in evaluation mode."""
        self.module = module
        self.module.eval()

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Return the greedy actions (n,) for observations (n, observation_size).

        ``forward_inference``'s ``actions`` when it returns them (DQN), else the argmax of its
        ``action_dist_inputs`` (PPO's logits), per RLlib's module conventions.
        """
        batch = torch.as_tensor(_batch(observations))
        with torch.no_grad():
            out = self.module.forward_inference({"obs": batch})
        if "actions" in out:
            return np.asarray(out["actions"], dtype=np.int64).reshape(-1)
        return out["action_dist_inputs"].argmax(dim=-1).numpy().astype(np.int64)


class A3CPolicy:
    """A greedy policy over the A3C actor-critic network.

    Args:
        network: ``training_containers.rl.a3c.ActorCritic``.
    """

    def __init__(self, network: Any) -> None:
        """Keep the network, in evaluation mode."""
        self.network = network.eval()

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Return the argmax of the policy logits (n,) for observations (n, observation_size)."""
        with torch.no_grad():
            logits, _ = self.network(torch.as_tensor(_batch(observations)))
        return logits.argmax(dim=-1).numpy().astype(np.int64)


def save_a3c_network(folder: Path, network: Any, info: Any, params: dict[str, Any]) -> None:
    """Write an A3C network to ``folder``: ``network.json`` (sizes) and ``a3c.pt`` (weights).

    Args:
        folder: the policy folder (created, emptied of earlier files of the same names).
        network: the trained ``ActorCritic``.
        info: the ``EnvironmentInfo`` (observation shape, number of actions).
        params: the hyperparameters (``hidden_layers``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {
        "observation_size": int(np.prod(info.observation_shape)),
        "n_actions": info.n_actions,
        "hidden_layers": list(params["hidden_layers"]),
    }
    (folder / _A3C_NETWORK).write_text(json.dumps(sizes))
    torch.save({k: v.detach().clone() for k, v in network.state_dict().items()}, folder / _A3C_WEIGHTS)


def load_policy(model_dir: Path) -> GreedyPolicy:
    """Load the greedy policy of a model folder written by ``training_containers.rl.train``.

    Args:
        model_dir: the folder holding ``metadata.json`` and ``policy/``.

    Returns:
        A policy whose ``act`` maps observations (n, observation_size) to actions (n,).

    Raises:
        FileNotFoundError: no ``metadata.json`` or no ``policy/`` folder.
        ValueError: an unknown ``policy_format`` in the metadata.
    """
    model_dir = Path(model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    folder = model_dir / POLICY_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{model_dir} has no {POLICY_DIR}/ folder; is it a reinforcement-learning model?"
        )
    policy_format = metadata.get("policy_format")
    if policy_format == "a3c_torch":
        from training_containers.rl.a3c import ActorCritic

        sizes = json.loads((folder / _A3C_NETWORK).read_text())
        network = ActorCritic(sizes["observation_size"], sizes["n_actions"], sizes["hidden_layers"])
        network.load_state_dict(torch.load(folder / _A3C_WEIGHTS, weights_only=True))
        return A3CPolicy(network)
    if policy_format == "rllib_rl_module":
        from ray.rllib.core.rl_module.rl_module import RLModule

        return RLModulePolicy(RLModule.from_checkpoint(str(folder.absolute())))
    raise ValueError(
        f"{model_dir}/metadata.json has policy_format {policy_format!r}; "
        "expected a3c_torch or rllib_rl_module"
    )


def _batch(observations: Any) -> np.ndarray:
    """Observations as a float32 array (n, observation_size); one observation becomes (1, size)."""
    array = np.ascontiguousarray(observations, dtype=np.float32)  # torch refuses negative strides
    return array.reshape(1, -1) if array.ndim == 1 else array.reshape(len(array), -1)
