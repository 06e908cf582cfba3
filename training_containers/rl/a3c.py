"""Asynchronous advantage actor-critic (A3C), as in Mnih et al. 2016, Algorithm S3.

The paper: "Asynchronous Methods for Deep Reinforcement Learning", ICML 2016.

Ray RLlib removed A3C (deprecated in Ray 2.8) and no maintained package ships it, so this is a
plain torch implementation. ``num_workers`` worker processes (``torch.multiprocessing``, spawn)
each play their own copy of the environment. A worker copies the shared parameters into its
local network, plays up to ``n_steps`` steps (t_max), computes the n-step returns
``R = r_t + gamma * R`` backwards from the bootstrap value (0 at a terminal state, V(s) of the
last observation otherwise, time-limit truncations included), and the gradient of

    policy loss  - sum log pi(a_t | s_t) * (R_t - V(s_t))      (advantage not differentiated)
    - entropy_coeff * sum H(pi(. | s_t))                          (exploration bonus)
    + value_loss_coeff * sum (R_t - V(s_t))^2

on its local copy, clips it to ``max_grad_norm`` (global L2 norm), and applies it to the SHARED
parameters with a SHARED Adam (its moment estimates and step count in shared memory), without
any lock: Hogwild-style updates (Recht et al. 2011), as the paper does. The actor and the critic
share the hidden layers (tanh), with a softmax policy head and a scalar value head.

The parent process only reads finished episodes from a queue, reports, checkpoints and decides
when to stop. The run is not bit-for-bit reproducible: the workers interleave freely.
"""

from __future__ import annotations

import math
import queue
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp
from torch import nn
from torch.distributions import Categorical

from training_containers.rl.environment import EnvironmentInfo, check_environment, make_environment
from training_containers.rl.progress import (
    CheckpointStore,
    EpisodeWindow,
    Progress,
    TrainingClock,
    stop_reason,
)

#: Seconds between two progress reports (metric lines and curve points).
REPORT_INTERVAL_S = 2.0
#: Seconds the parent waits for a finished episode before checking its workers again.
_POLL_S = 0.2


class ActorCritic(nn.Module):
    """Shared tanh hidden layers, a policy head (action logits) and a value head.

    Args:
        observation_size: length of the flat observation vector.
        n_actions: number of discrete actions.
        hidden_layers: width of each hidden layer, input side first.
    """

    def __init__(self, observation_size: int, n_actions: int, hidden_layers: list[int]) -> None:
        """Build the layers (PyTorch's default initialisation)."""
        super().__init__()
        layers: list[nn.Module] = []
        width = observation_size
        for hidden in hidden_layers:
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.policy = nn.Linear(width, n_actions)
        self.value = nn.Linear(width, 1)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map observations (batch, observation_size) to logits (batch, n_actions) and values (batch,)."""
        hidden = self.body(observations)
        return self.policy(hidden), self.value(hidden).squeeze(-1)


class SharedAdam(torch.optim.Adam):
    """Adam whose state (step, first and second moments) lives in shared memory.

    Every worker steps the same optimizer state, as the paper's shared RMSProp does ("shared
    statistics" variant, Mnih et al. 2016, section 4 and supplementary section 7). The state is
    created eagerly so it exists before the workers start.
    """

    def __init__(self, params: Any, lr: float) -> None:
        """Create Adam (betas 0.9 and 0.999, eps 1e-8, PyTorch's defaults) and share its state."""
        super().__init__(params, lr=lr, foreach=False)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.share_state()

    def share_state(self) -> None:
        """Move every state tensor to shared memory (again after ``load_state_dict``)."""
        for state in self.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.share_memory_()


@dataclass(frozen=True)
class WorkerConfig:
    """What each worker needs (picklable for the spawn start method).

    Attributes:
        environment: the Gymnasium id.
        info: the environment's spaces.
        params: the A3C hyperparameters (see ``training_containers.rl.train.DEFAULTS``).
        seed: the worker's seed (environment reset and action sampling).
    """

    environment: str
    info: EnvironmentInfo
    params: dict[str, Any]
    seed: int


def build_network(info: EnvironmentInfo, params: dict[str, Any]) -> ActorCritic:
    """Return the actor-critic network for ``info``'s spaces and ``params["hidden_layers"]``."""
    return ActorCritic(math.prod(info.observation_shape), info.n_actions, list(params["hidden_layers"]))


def train_a3c(
    environment: dict[str, Any],
    params: dict[str, Any],
    seed: int,
    store: CheckpointStore | None = None,
) -> tuple[ActorCritic, Progress, str]:
    """Train A3C until a stop rule holds, resuming from ``store``'s checkpoint when there is one.

    Args:
        environment: the spec's environment section: ``name``, ``total_timesteps`` (environment
            steps over all workers), ``stop_mean_return`` (optional; compared with the mean of
            the last ``progress.RETURN_WINDOW`` training episodes).
        params: A3C hyperparameters: ``learning_rate``, ``gamma``, ``n_steps``, ``entropy_coeff``,
            ``value_loss_coeff``, ``max_grad_norm``, ``num_workers``, ``hidden_layers``.
        seed: seeds the initial parameters and, with the worker rank, each worker.
        store: where checkpoints are read and written (every ``CHECKPOINT_INTERVAL_S`` seconds
            and at the end); None trains without checkpoints.

    Returns:
        The trained network, the progress (totals and return curve), and why training stopped
        (``stop_mean_return`` or ``total_timesteps``).

    Raises:
        ValueError: the environment cannot be trained on (see ``check_environment``).
        RuntimeError: a worker failed (its traceback is in the message).
    """
    info = check_environment(environment["name"], "a3c")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    network = build_network(info, params)
    optimizer = SharedAdam(network.parameters(), lr=float(params["learning_rate"]))
    progress = _resume(store, network, optimizer) if store else Progress()
    network.share_memory()
    generation = int(progress.extra.get("generation", -1)) + 1
    progress.extra["generation"] = generation
    context = mp.get_context("spawn")
    steps = context.Value("q", progress.env_steps)
    episodes: Any = context.Queue()
    stop = context.Event()
    workers = [
        context.Process(
            target=_worker,
            args=(rank, network, optimizer, WorkerConfig(environment["name"], info, params, seed), steps),
            kwargs={"generation": generation, "episodes": episodes, "stop": stop},
            name=f"a3c-worker-{rank}",
            daemon=True,
        )
        for rank in range(int(params["num_workers"]))
    ]
    for worker in workers:
        worker.start()
    try:
        reason = _follow(workers, steps, episodes, progress, environment, network, optimizer, store)
    finally:
        stop.set()
        _join(workers, episodes)
    if store is not None:  # the final weights; the rollouts in flight at the stop are not counted
        store.save(progress, lambda path: save_state(path, network, optimizer))
    return network, progress, reason


def _follow(
    workers: list[Any],
    steps: Any,
    episodes: Any,
    progress: Progress,
    environment: dict[str, Any],
    network: ActorCritic,
    optimizer: SharedAdam,
    store: CheckpointStore | None,
) -> str:
    """Parent loop: collect episodes, report, checkpoint; return the stop reason."""
    clock = TrainingClock(progress.training_s)
    window = EpisodeWindow.restore(progress.extra.get("window"))
    count, last_report = progress.episodes, clock.now_s()
    while True:
        try:
            message = episodes.get(timeout=_POLL_S)
            if message[0] == "error":
                raise RuntimeError(f"an A3C worker failed:\n{message[1]}")
            window.add(float(message[1]))
            count += 1
        except queue.Empty:
            dead = [w.name for w in workers if not w.is_alive()]
            if dead:
                raise RuntimeError(
                    f"A3C workers {dead} died without a report (killed, out of memory?)"
                ) from None
        progress.env_steps = int(steps.value)
        progress.mean_return = window.mean()
        reason = stop_reason(progress, environment)
        if reason or clock.now_s() - last_report >= REPORT_INTERVAL_S:
            last_report = clock.now_s()
            progress.report(progress.env_steps, count, progress.mean_return, last_report)
        progress.training_s, progress.extra["window"] = clock.now_s(), window.entries()
        if reason:
            return reason
        if store is not None and clock.checkpoint_due():
            store.save(progress, lambda path: save_state(path, network, optimizer))


def save_state(path: Path, network: ActorCritic, optimizer: SharedAdam) -> None:
    """Write the network's and the optimizer's state to ``path`` (``torch.save``)."""
    torch.save({"network": network.state_dict(), "optimizer": optimizer.state_dict()}, path)


def _resume(store: CheckpointStore, network: ActorCritic, optimizer: SharedAdam) -> Progress:
    latest = store.latest()
    if latest is None:
        return Progress()
    progress, path = latest
    state = torch.load(path, weights_only=True)
    network.load_state_dict(state["network"])
    optimizer.load_state_dict(state["optimizer"])
    optimizer.share_state()
    progress.resumed_from_env_steps = progress.env_steps
    return progress


def _join(workers: list[Any], episodes: Any) -> None:
    """Wait for the workers to exit, draining the queue so none blocks on a full pipe."""
    for worker in workers:
        while worker.is_alive():
            worker.join(timeout=0.1)
            try:
                while True:
                    episodes.get_nowait()
            except queue.Empty:
                pass


def _worker(
    rank: int,
    shared: ActorCritic,
    optimizer: SharedAdam,
    config: WorkerConfig,
    steps: Any,
    *,
    generation: int,
    episodes: Any,
    stop: Any,
) -> None:
    """One asynchronous actor-learner: play, compute the n-step gradient, update shared parameters."""
    try:
        torch.set_num_threads(1)
        worker_seed = config.seed + 1000 * rank + 100_000 * generation
        torch.manual_seed(worker_seed)
        env = make_environment(config.environment)
        local = build_network(config.info, config.params)
        observation, _ = env.reset(seed=worker_seed)
        episode_return = 0.0
        while not stop.is_set():
            local.load_state_dict(shared.state_dict())
            rollout, observation, episode_return = _rollout(env, local, observation, episode_return, config)
            with steps.get_lock():
                steps.value += rollout.length
            for finished in rollout.finished:
                episodes.put(("episode", finished))
            _update(local, shared, optimizer, rollout, config.params)
    except Exception:  # noqa: BLE001 - the parent reports it through the failure protocol
        episodes.put(("error", traceback.format_exc()))


@dataclass
class _Rollout:
    log_probs: list[torch.Tensor]
    values: list[torch.Tensor]
    entropies: list[torch.Tensor]
    rewards: list[float]
    bootstrap: float
    finished: list[float]
    length: int


def _rollout(
    env: Any, local: ActorCritic, observation: Any, episode_return: float, config: WorkerConfig
) -> tuple[_Rollout, Any, float]:
    """Play up to ``n_steps`` steps with the local network; stop early at an episode's end."""
    out = _Rollout([], [], [], [], 0.0, [], 0)
    for _ in range(int(config.params["n_steps"])):
        logits, value = local(torch.as_tensor(observation, dtype=torch.float32).reshape(1, -1))
        distribution = Categorical(logits=logits)
        action = distribution.sample()
        observation, reward, terminated, truncated, _ = env.step(int(action.item()))
        out.log_probs.append(distribution.log_prob(action))
        out.values.append(value)
        out.entropies.append(distribution.entropy())
        out.rewards.append(float(reward))
        out.length += 1
        episode_return += float(reward)
        if terminated or truncated:
            if truncated and not terminated:  # a time limit: the state has a value
                out.bootstrap = _value(local, observation)
            out.finished.append(episode_return)
            observation, _ = env.reset()
            return out, observation, 0.0
    out.bootstrap = _value(local, observation)
    return out, observation, episode_return


def _value(local: ActorCritic, observation: Any) -> float:
    with torch.no_grad():
        return float(local(torch.as_tensor(observation, dtype=torch.float32).reshape(1, -1))[1].item())


def _update(
    local: ActorCritic, shared: ActorCritic, optimizer: SharedAdam, rollout: _Rollout, params: dict[str, Any]
) -> None:
    """Compute the n-step actor-critic gradient locally and apply it to the shared parameters."""
    gamma = float(params["gamma"])
    returns, running = [], rollout.bootstrap
    for reward in reversed(rollout.rewards):
        running = reward + gamma * running
        returns.append(running)
    target = torch.tensor(returns[::-1], dtype=torch.float32)
    values = torch.cat(rollout.values)
    advantages = target - values
    policy_loss = -(torch.cat(rollout.log_probs) * advantages.detach()).sum()
    entropy = torch.cat(rollout.entropies).sum()
    value_loss = advantages.pow(2).sum()
    loss = (
        policy_loss
        - float(params["entropy_coeff"]) * entropy
        + float(params["value_loss_coeff"]) * value_loss
    )
    local.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(local.parameters(), float(params["max_grad_norm"]))
    for local_param, shared_param in zip(local.parameters(), shared.parameters(), strict=True):
        shared_param.grad = local_param.grad
    optimizer.step()
