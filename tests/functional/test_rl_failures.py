"""The reinforcement-learning program refuses what it cannot train, through the failure protocol."""

from __future__ import annotations

import pytest

from tests.functional.rl_job import finish, start, write_job


def failure_of(root) -> str:
    return (root / "output" / "failure").read_text()


def test_an_unknown_environment_fails_with_the_closest_ids(tmp_path):
    root = write_job(tmp_path, "a3c", {"name": "CartPole-v9", "total_timesteps": 1000})
    assert finish(root, start(root), timeout_s=120) == 1
    failure = failure_of(root)
    assert failure.startswith(
        "ValueError: environment 'CartPole-v9' is not a registered Gymnasium environment"
    )
    assert "did you mean CartPole-v1" in failure
    assert not (root / "model" / "metadata.json").exists()


@pytest.mark.parametrize("algorithm", ["dqn", "a3c"])
def test_continuous_actions_are_refused_before_training(tmp_path, algorithm):
    root = write_job(tmp_path, algorithm, {"name": "Pendulum-v1", "total_timesteps": 1000})
    assert finish(root, start(root, warm=False), timeout_s=120) == 1
    failure = failure_of(root)
    assert f"{algorithm} in this program needs a discrete action space" in failure
    assert "Pendulum-v1 has Box(" in failure
    assert not (root / "checkpoints").exists()  # refused before any training (no Ray, no workers)


def test_an_unknown_hyperparameter_is_refused(tmp_path):
    root = write_job(tmp_path, "ppo", {"name": "CartPole-v1", "total_timesteps": 1000}, learning_rat=0.1)
    assert finish(root, start(root), timeout_s=120) == 1
    assert "unknown hyperparameters for ppo: ['learning_rat']" in failure_of(root)
