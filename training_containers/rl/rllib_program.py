"""PPO and DQN through Ray RLlib 2.60's new API stack (RLModule, Learner, EnvRunner).

``ray_session`` starts a private Ray instance sized for one job: no dashboard, no usage report,
a 256 MiB object store (Ray's default, 30 % of RAM, is mapped up front and breaks a job's
address-space limit), its temporary files in a short folder (Unix socket paths are limited to
107 characters) removed at the end. ``train_rllib`` builds the algorithm, resumes it from the
last checkpoint (``Algorithm.restore_from_path``), and calls ``Algorithm.train()`` until a stop
rule holds. The returned policy is exported as the learner's RLModule checkpoint, which
``RLModule.from_checkpoint`` loads without Ray running (``policy.load_policy``).

The mean training return is RLlib's per-iteration ``env_runners/episode_return_mean`` over the
iterations holding the last ``RETURN_WINDOW`` finished episodes, weighted by their
``num_episodes`` (the same window as A3C's).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from training_containers.rl.environment import check_environment
from training_containers.rl.progress import (
    CheckpointStore,
    EpisodeWindow,
    Progress,
    TrainingClock,
    stop_reason,
)

#: Object store size of the job's Ray instance, bytes (CartPole batches need a few MiB).
OBJECT_STORE_BYTES = 256 * 1024 * 1024
#: Where RLlib puts the learner's module inside an ``Algorithm.save_to_path`` checkpoint.
MODULE_IN_CHECKPOINT = Path("learner_group") / "learner" / "rl_module" / "default_policy"


@contextmanager
def ray_session(num_cpus: int | None = None) -> Iterator[None]:
    """Run the block inside a private, job-sized Ray instance, then shut it down.

    Args:
        num_cpus: CPUs Ray may schedule on (default: the machine's count).

    Raises:
        RuntimeError: Ray could not start (propagated from ``ray.init``).
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file in the home folder
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network call home
    import ray

    temp_dir = tempfile.mkdtemp(prefix="ray-")
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=OBJECT_STORE_BYTES,
        _temp_dir=temp_dir,
        logging_level=logging.WARNING,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def build_config(algorithm: str, environment: str, params: dict[str, Any], seed: int) -> Any:
    """Return the RLlib ``PPOConfig`` or ``DQNConfig`` for the hyperparameters.

    Args:
        algorithm: ``ppo`` or ``dqn``.
        environment: the Gymnasium id.
        params: the hyperparameters (``training_containers.rl.train.DEFAULTS``); their RLlib
            names are in ``_ppo_training`` and ``_dqn_training``.
        seed: ``config.debugging(seed=...)``: seeds torch, numpy and the environments.

    Returns:
        The algorithm config (torch, new API stack), not yet built.

    Raises:
        ValueError: an algorithm other than ppo or dqn.
    """
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    if algorithm == "ppo":
        from ray.rllib.algorithms.ppo import PPOConfig

        config: Any = PPOConfig().training(**_ppo_training(params))
        model = DefaultModelConfig(fcnet_hiddens=list(params["hidden_layers"]), vf_share_layers=False)
    elif algorithm == "dqn":
        from ray.rllib.algorithms.dqn import DQNConfig

        config = DQNConfig().training(**_dqn_training(params))
        model = DefaultModelConfig(fcnet_hiddens=list(params["hidden_layers"]))
    else:
        raise ValueError(f"RLlib trains ppo and dqn here, not {algorithm!r}")
    return (
        config.environment(environment)
        .framework("torch")
        .env_runners(num_env_runners=int(params["num_env_runners"]))
        .rl_module(model_config=model)
        .debugging(seed=seed)
    )


def _ppo_training(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "lr": params["learning_rate"],
        "gamma": params["gamma"],
        "lambda_": params["lambda_"],
        "clip_param": params["clip_param"],
        "entropy_coeff": params["entropy_coeff"],
        "vf_loss_coeff": params["vf_loss_coeff"],
        "train_batch_size_per_learner": params["train_batch_size"],
        "minibatch_size": params["minibatch_size"],
        "num_epochs": params["num_epochs"],
    }


def _dqn_training(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "lr": params["learning_rate"],
        "gamma": params["gamma"],
        "train_batch_size_per_learner": params["train_batch_size"],
        "replay_buffer_config": {
            "type": "PrioritizedEpisodeReplayBuffer",
            "capacity": params["replay_buffer_capacity"],
            "alpha": 0.6,  # RLlib's DQNConfig defaults (Schaul et al. 2016)
            "beta": 0.4,
        },
        "target_network_update_freq": params["target_network_update_freq"],
        "epsilon": [(0, 1.0), (params["epsilon_timesteps"], params["final_epsilon"])],
        "n_step": params["n_step"],
        "double_q": params["double_q"],
        "dueling": params["dueling"],
    }


def train_rllib(
    algorithm: str,
    environment: dict[str, Any],
    params: dict[str, Any],
    seed: int,
    store: CheckpointStore,
) -> tuple[Progress, str, Path]:
    """Train PPO or DQN until a stop rule holds; call inside ``ray_session``.

    Args:
        algorithm: ``ppo`` or ``dqn``.
        environment: the spec's environment section (``name``, ``total_timesteps``,
            ``stop_mean_return``).
        params: the hyperparameters.
        seed: the RLlib seed.
        store: checkpoints: resumed from when present, written every ``CHECKPOINT_INTERVAL_S``
            seconds and at the end.

    Returns:
        The progress, why training stopped, and the final checkpoint's state folder (its
        ``MODULE_IN_CHECKPOINT`` subfolder is the trained RLModule).

    Raises:
        ValueError: the environment cannot be trained on (see ``check_environment``).
    """
    check_environment(environment["name"], algorithm)
    algo = build_config(algorithm, environment["name"], params, seed).build_algo()
    try:
        progress = Progress()
        latest = store.latest()
        if latest is not None:
            progress, state = latest
            algo.restore_from_path(str(state.absolute()))
            progress.resumed_from_env_steps = progress.env_steps
        window = EpisodeWindow.restore(progress.extra.get("window"))
        clock = TrainingClock(progress.training_s)
        while (reason := stop_reason(progress, environment)) is None:
            runners = algo.train()["env_runners"]
            count = int(runners.get("num_episodes", 0) or 0)
            if count:
                window.add(float(runners["episode_return_mean"]) * count, count)
            steps = progress.env_steps + int(runners.get("num_env_steps_sampled", 0) or 0)
            progress.report(steps, progress.episodes + count, window.mean(), clock.now_s())
            progress.training_s, progress.extra["window"] = clock.now_s(), window.entries()
            if clock.checkpoint_due():
                store.save(progress, lambda path: algo.save_to_path(str(path)))
        final = store.save(progress, lambda path: algo.save_to_path(str(path)))
        return progress, reason, final
    finally:
        algo.stop()
