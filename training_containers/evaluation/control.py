"""Evaluation of reinforcement-learning policies (the control task).

Loads the greedy policy of the mounted model folder (``training_containers.rl.greedy``), plays
``environment.evaluation_episodes`` episodes in the Gymnasium environment (episode ``i`` reset
with seed ``config.seed + i``; greedy actions, so no other randomness), and reports the mean and
standard deviation of the episode return and the mean episode length. Training figures come from
the model folder (``metadata.json``, ``training_returns.json``). The evaluation is separate from
training because the training return is measured with exploration (and, for RLlib, averaged
while the policy changes): DQN's greedy return can be well below its training return.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from training_containers.common.contract import write_metric_lines
from training_containers.common.metrics import format_metric_lines
from training_containers.evaluation.processing import EvaluationConfig, ProcessingContract, say
from training_containers.rl.environment import check_environment, make_environment
from training_containers.rl.greedy import GreedyPolicy, load_policy

#: Episodes played when the configuration does not say (EnvironmentSpec's default).
DEFAULT_EPISODES = 20
PLOTS = {
    "training_returns": "plots/training_returns.png",
    "evaluation_returns": "plots/evaluation_returns.png",
}
_REASONS = {
    "stop_mean_return": "the mean training return reached stop_mean_return",
    "total_timesteps": "it used its total_timesteps budget",
}


def evaluate(contract: ProcessingContract, config: EvaluationConfig) -> dict[str, Any]:
    """Play greedy episodes with the mounted policy; draw the return plots.

    Args:
        contract: the processing contract (``model_dir`` holds the policy folder).
        config: ``environment`` (``name``, ``evaluation_episodes``), ``seed``, ``metrics``.

    Returns:
        The report fields of this family: ``metrics`` (mean_return, std_return,
        mean_episode_length), ``train_metrics`` (mean_return: the last training mean,
        env_steps, episodes, training_duration_s), empty ``validation_metrics`` and ``gaps``,
        ``n_test`` (episodes), ``n_validation`` (0), ``n_train`` (training environment steps),
        ``plots``, ``details`` (episode_returns, episode_lengths, env_steps, environment,
        max_episode_steps, reward_threshold, stopped_because), ``notes`` and ``algorithm``.

    Raises:
        FileNotFoundError: the model folder lacks ``metadata.json`` or ``policy/``.
        ValueError: a requested metric that this evaluation does not produce, an unknown
            environment, or a policy trained on other spaces than the environment's.
    """
    metadata = json.loads((contract.model_dir / "metadata.json").read_text())
    environment = dict(config.environment or {})
    name = environment["name"]
    _check_requested(config.metrics)
    info = check_environment(name, metadata.get("algorithm", "the policy"))
    if [*info.observation_shape] != metadata.get("observation_shape") or info.n_actions != metadata.get(
        "n_actions"
    ):
        raise ValueError(
            f"the policy was trained on observations {metadata.get('observation_shape')} and "
            f"{metadata.get('n_actions')} actions ({metadata.get('environment', {}).get('name')}); "
            f"{name} has {list(info.observation_shape)} and {info.n_actions}"
        )
    episodes = int(environment.get("evaluation_episodes") or DEFAULT_EPISODES)
    returns, lengths = play(load_policy(contract.model_dir), name, episodes, config.seed)
    metrics = {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_episode_length": float(np.mean(lengths)),
    }
    write_metric_lines(format_metric_lines("test", metrics))
    curve = _training_curve(contract)
    train = _train_metrics(metadata, curve)
    _plots(contract, curve, returns, environment, metrics["mean_return"])
    threshold = _reward_threshold(name)
    details = {
        "episode_returns": returns,
        "episode_lengths": lengths,
        "env_steps": metadata.get("env_steps"),
        "environment": name,
        "max_episode_steps": info.max_episode_steps,
        "reward_threshold": threshold,
        "stopped_because": metadata.get("stopped_because"),
    }
    say(f"{episodes} greedy episodes of {name}: mean return {metrics['mean_return']:.1f}")
    return {
        "metrics": metrics,
        "train_metrics": train,
        "validation_metrics": {},
        "gaps": {},
        "n_test": episodes,
        "n_validation": 0,
        "n_train": int(metadata.get("env_steps") or 0),
        "plots": dict(PLOTS),
        "details": details,
        "notes": notes(metrics, train, details, metadata),
        "algorithm": metadata.get("algorithm", ""),
    }


def play(policy: GreedyPolicy, name: str, episodes: int, seed: int) -> tuple[list[float], list[int]]:
    """Play ``episodes`` greedy episodes; episode ``i`` is reset with seed ``seed + i``.

    Returns:
        The return (sum of rewards) and the length (steps) of each episode.
    """
    env = make_environment(name)
    returns, lengths = [], []
    try:
        for i in range(episodes):
            observation, _ = env.reset(seed=seed + i)
            total, steps, done = 0.0, 0, False
            while not done:
                action = policy.act(np.asarray(observation, dtype=np.float32)[None])[0]
                observation, reward, terminated, truncated, _ = env.step(int(action))
                total, steps, done = total + float(reward), steps + 1, terminated or truncated
            returns.append(total)
            lengths.append(steps)
    finally:
        env.close()
    return returns, lengths


def notes(
    metrics: dict[str, float], train: dict[str, float], details: dict[str, Any], metadata: dict[str, Any]
) -> list[str]:
    """Short sentences for the user about the evaluation and the training behind it."""
    returns = details["episode_returns"]
    out = [
        f"{len(returns)} greedy episodes of {details['environment']}: mean return "
        f"{metrics['mean_return']:.1f} ± {metrics['std_return']:.1f} (min {min(returns):.0f}, "
        f"max {max(returns):.0f})."
    ]
    limit = details.get("max_episode_steps")
    if limit and all(length == limit for length in details["episode_lengths"]):
        out.append(f"Every episode lasted the environment's limit of {limit} steps.")
    threshold = details.get("reward_threshold")
    if threshold is not None:
        verb = "reaches" if metrics["mean_return"] >= threshold else "does not reach"
        out.append(
            f"Gymnasium counts {details['environment']} as solved at a mean return of {threshold:g}; "
            f"the policy {verb} it."
        )
    reason = _REASONS.get(str(metadata.get("stopped_because")), "")
    if reason:
        out.append(
            f"Training stopped after {int(train.get('env_steps', 0)):,} environment steps "
            f"({train.get('training_duration_s', 0):.0f} s) because {reason}."
        )
    if metadata.get("resumed_from_env_steps"):
        out.append(
            f"Training resumed from a checkpoint at {metadata['resumed_from_env_steps']:,} environment steps."
        )
    last = train.get("mean_return")
    if last is not None and metrics["mean_return"] < 0.9 * last:
        out.append(
            f"The greedy mean return is below the last training mean ({last:.1f}); the training mean is "
            "measured while the policy explores and changes, so judge on this evaluation."
        )
    return out


def _check_requested(requested: list[str]) -> None:
    produced = ("mean_return", "std_return", "mean_episode_length")
    absent = [m for m in requested if m not in produced]
    if absent:
        raise ValueError(
            f"cannot compute {absent} for a control task: its evaluation produces {', '.join(produced)}; "
            "drop the others from evaluation.metrics"
        )


def _training_curve(contract: ProcessingContract) -> list[dict[str, float]]:
    path = contract.model_dir / "training_returns.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _train_metrics(metadata: dict[str, Any], curve: list[dict[str, float]]) -> dict[str, float]:
    last = metadata.get("final_mean_return")
    if last is None and curve:
        last = curve[-1]["mean_return"]
    train = {
        "env_steps": float(metadata.get("env_steps") or 0),
        "episodes": float(metadata.get("episodes") or 0),
        "training_duration_s": float(metadata.get("training_duration_s") or 0),
    }
    return {"mean_return": float(last), **train} if last is not None else train


def _reward_threshold(name: str) -> float | None:
    import gymnasium

    threshold = gymnasium.spec(name).reward_threshold
    return float(threshold) if threshold is not None else None


def _plots(
    contract: ProcessingContract,
    curve: list[dict[str, float]],
    returns: list[float],
    environment: dict[str, Any],
    mean_return: float,
) -> None:
    """Draw the training return curve and the evaluation returns; save them as PNG files."""
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, headless

    from training_containers.evaluation.plots import save

    figure = Figure(figsize=(6.4, 4.8))
    ax = figure.subplots()
    if curve:
        ax.plot(
            [p["env_steps"] for p in curve], [p["mean_return"] for p in curve], label="mean training return"
        )
    if environment.get("stop_mean_return") is not None:
        ax.axhline(
            float(environment["stop_mean_return"]),
            color="grey",
            linestyle="--",
            linewidth=1,
            label="stop_mean_return",
        )
    ax.set(
        xlabel="Environment steps", ylabel="Mean episode return (last 20 episodes)", title="Training returns"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    save(figure, contract.output(PLOTS["training_returns"]))

    figure = Figure(figsize=(6.4, 4.8))
    ax = figure.subplots()
    ax.bar(range(1, len(returns) + 1), returns, color="tab:blue", label="episode return")
    ax.axhline(mean_return, color="tab:orange", linewidth=1.5, label=f"mean {mean_return:.1f}")
    ax.set(
        xlabel="Evaluation episode (greedy)",
        ylabel="Return",
        title=f"Evaluation returns, {environment['name']}",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small")
    save(figure, contract.output(PLOTS["evaluation_returns"]))
