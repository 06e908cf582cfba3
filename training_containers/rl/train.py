"""Reinforcement-learning training program: PPO and DQN (Ray RLlib), A3C (torch), on Gymnasium.

Follows the SageMaker training contract (``training_containers.common.contract``) with no input
channel: the data is the environment named by the reserved ``_environment`` hyperparameter
(``name``, ``total_timesteps``, ``stop_mean_return``, ``evaluation_episodes``). Training stops
at ``total_timesteps`` environment steps or once the mean return of the last 20 training
episodes reaches ``stop_mean_return``. Each report prints ``train_mean_return``,
``train_env_steps``, ``train_episodes`` and ``train_time_s`` (seconds) lines.

Checkpoints go to ``/opt/ml/checkpoints`` every 30 s and at the end; a job that finds one there
resumes from it (a spot interruption), continuing the step count and the return curve.

The model folder holds ``metadata.json``, ``training_returns.json`` (``[{"env_steps",
"mean_return", "time_s"}, ...]``) and ``policy/``: an RLlib RLModule checkpoint (PPO, DQN) or
the A3C network (``a3c.pt`` and ``network.json``); ``policy.load_policy`` loads either without
Ray running. Run it as ``python -m training_containers.rl.train``.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from training_containers.common.contract import JobConfig, TrainingContract, run
from training_containers.common.program import resolve_hyperparameters
from training_containers.rl.environment import EnvironmentInfo, check_environment
from training_containers.rl.greedy import POLICY_DIR, save_a3c_network
from training_containers.rl.progress import CheckpointStore, Progress

#: Each algorithm's hyperparameters and defaults (mirrors PPOHyperparameters, DQNHyperparameters
#: and A3CHyperparameters in mcp_server/core/spec/hyperparameters.py; the container does not import
#: the server). They solve CartPole-v1 (mean training return 450) in 56k (PPO, seed 0), 30k to
#: 45k (A3C) and 73k (DQN, one run) environment steps.
DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {
        "learning_rate": 1e-3,
        "gamma": 0.99,
        "lambda_": 0.95,
        "clip_param": 0.2,
        "entropy_coeff": 0.0,
        "vf_loss_coeff": 0.5,
        "train_batch_size": 2000,
        "minibatch_size": 128,
        "num_epochs": 10,
        "hidden_layers": [64, 64],
        "num_env_runners": 0,
    },
    "dqn": {
        "learning_rate": 5e-4,
        "gamma": 0.99,
        "train_batch_size": 32,
        "replay_buffer_capacity": 50_000,
        "target_network_update_freq": 500,
        "epsilon_timesteps": 10_000,
        "final_epsilon": 0.02,
        "n_step": 3,
        "double_q": True,
        "dueling": True,
        "hidden_layers": [256],
        "num_env_runners": 0,
    },
    "a3c": {
        "learning_rate": 5e-3,
        "gamma": 0.99,
        "n_steps": 20,
        "entropy_coeff": 0.01,
        "value_loss_coeff": 0.5,
        "max_grad_norm": 40.0,
        "num_workers": 2,
        "hidden_layers": [128],
    },
}
#: The environment section's defaults (mirrors EnvironmentSpec in mcp_server/core/spec/schema.py).
ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "total_timesteps": 100_000,
    "stop_mean_return": None,
    "evaluation_episodes": 20,
}


def resolve_environment(section: dict[str, Any] | None) -> dict[str, Any]:
    """Fill the environment section's defaults.

    Raises:
        ValueError: no section, no ``name``, an unknown key, or ``total_timesteps`` below 1.
    """
    if not section or not section.get("name"):
        raise ValueError("a control job needs _environment.name (a Gymnasium id such as CartPole-v1)")
    unknown = sorted(set(section) - set(ENVIRONMENT_DEFAULTS) - {"name"})
    if unknown:
        raise ValueError(
            f"unknown environment keys {unknown}; allowed: name, {', '.join(ENVIRONMENT_DEFAULTS)}"
        )
    environment = {**ENVIRONMENT_DEFAULTS, **section}
    if int(environment["total_timesteps"]) < 1:
        raise ValueError(f"total_timesteps must be at least 1, got {environment['total_timesteps']}")
    return environment


def main() -> None:
    """Train one policy under the training contract and write the model folder."""
    contract = TrainingContract.from_env()
    config = JobConfig.from_hyperparameters(contract.read_hyperparameters())
    if config.task != "control" or config.algorithm not in DEFAULTS:
        raise ValueError(
            f"the reinforcement-learning program trains {sorted(DEFAULTS)} for the control task, "
            f"not {config.algorithm!r} for {config.task!r}"
        )
    environment = resolve_environment(config.environment)
    params = resolve_hyperparameters(config.algorithm, config.hyperparameters, DEFAULTS[config.algorithm])
    info = check_environment(environment["name"], config.algorithm)
    store = CheckpointStore(contract.checkpoints_dir)
    policy_dir = contract.model_dir / POLICY_DIR
    if config.algorithm == "a3c":
        from training_containers.rl.a3c import train_a3c

        network, progress, reason = train_a3c(environment, params, config.seed, store)
        save_a3c_network(policy_dir, network, info, params)
    else:
        from training_containers.rl.rllib_program import MODULE_IN_CHECKPOINT, ray_session, train_rllib

        with ray_session():
            progress, reason, state = train_rllib(config.algorithm, environment, params, config.seed, store)
        shutil.rmtree(policy_dir, ignore_errors=True)
        shutil.copytree(state / MODULE_IN_CHECKPOINT, policy_dir)
    write_model(contract.model_dir, metadata(config, environment, params, info, progress, reason), progress)
    print(f"training stopped ({reason}) after {progress.env_steps} environment steps", flush=True)


def metadata(
    config: JobConfig,
    environment: dict[str, Any],
    params: dict[str, Any],
    info: EnvironmentInfo,
    progress: Progress,
    reason: str,
) -> dict[str, Any]:
    """Describe the policy for ``metadata.json``.

    Returns:
        algorithm, task, environment (the resolved section), hyperparameters (as used), seed,
        env_steps, episodes, training_duration_s (seconds, resumes included), final_mean_return,
        stopped_because, resumed_from_env_steps, observation_shape, n_actions,
        max_episode_steps, observation_names, policy_format, library_versions.
    """
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
    }
    if "ray" in sys.modules:
        versions["ray"] = sys.modules["ray"].__version__
    size = int(np.prod(info.observation_shape))
    return {
        "algorithm": config.algorithm,
        "task": config.task,
        "environment": environment,
        "hyperparameters": params,
        "seed": config.seed,
        "env_steps": progress.env_steps,
        "episodes": progress.episodes,
        "training_duration_s": round(progress.training_s, 3),
        "final_mean_return": progress.mean_return,
        "stopped_because": reason,
        "resumed_from_env_steps": progress.resumed_from_env_steps,
        "observation_shape": list(info.observation_shape),
        "n_actions": info.n_actions,
        "max_episode_steps": info.max_episode_steps,
        "observation_names": [f"observation_{i}" for i in range(size)],
        "policy_format": "a3c_torch" if config.algorithm == "a3c" else "rllib_rl_module",
        "library_versions": versions,
    }


def write_model(model_dir: Path, meta: dict[str, Any], progress: Progress) -> None:
    """Write ``metadata.json`` and ``training_returns.json`` next to ``policy/``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "training_returns.json").write_text(json.dumps(progress.curve, indent=1))
    (model_dir / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))


if __name__ == "__main__":
    run(main)
