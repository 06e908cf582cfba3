"""The PPO and DQN programs (Ray RLlib) as local jobs, forked from the warm fork server.

Each job starts its own Ray instance (15 to 20 s before the first iteration), so the budgets are
tiny: one PPO iteration (2,000 steps) and one DQN iteration (1,000 steps), started together.
The tests check what a policy needs downstream: the RLModule checkpoint that loads without Ray,
greedy actions, metric lines, a checkpoint the job resumes from, and the MLflow pyfunc model.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from tests.functional.rl_job import finish, log, metrics, read_json, start, write_job
from training_containers.rl.policy import PolicyModel, RLModulePolicy, load_policy

pytestmark = pytest.mark.slow

CARTPOLE = {"name": "CartPole-v1", "evaluation_episodes": 3}
BUDGETS = {"ppo": 2000, "dqn": 1000}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    base = tmp_path_factory.mktemp("rllib")
    roots = {
        algorithm: write_job(base / algorithm, algorithm, {**CARTPOLE, "total_timesteps": steps}, seed=1)
        for algorithm, steps in BUDGETS.items()
    }
    started = {algorithm: start(root) for algorithm, root in roots.items()}
    for algorithm, job in started.items():
        assert finish(roots[algorithm], job) == 0, log(roots[algorithm])[-3000:]
    return roots


@pytest.mark.parametrize("algorithm", sorted(BUDGETS))
def test_the_job_writes_a_policy_that_loads_without_ray(jobs, algorithm):
    import ray

    model = jobs[algorithm] / "model"
    meta = read_json(model / "metadata.json")
    assert meta["algorithm"] == algorithm and meta["policy_format"] == "rllib_rl_module"
    assert meta["env_steps"] >= BUDGETS[algorithm] and meta["stopped_because"] == "total_timesteps"
    assert meta["library_versions"]["ray"] == ray.__version__
    policy = load_policy(model)
    assert isinstance(policy, RLModulePolicy) and not ray.is_initialized()
    observations = np.random.default_rng(0).normal(0, 0.1, size=(16, 4))
    actions = policy.act(observations)
    assert actions.shape == (16,) and actions.dtype == np.int64 and set(actions.tolist()) <= {0, 1}
    assert np.array_equal(actions, policy.act(observations))  # greedy: the same every time


@pytest.mark.parametrize("algorithm", sorted(BUDGETS))
def test_the_job_prints_metrics_and_keeps_a_checkpoint(jobs, algorithm):
    found = metrics(jobs[algorithm])
    meta = read_json(jobs[algorithm] / "model" / "metadata.json")
    assert found["train_env_steps"] == meta["env_steps"]
    assert found["train_episodes"] == meta["episodes"] > 0
    assert 8 < found["train_mean_return"] < 500  # CartPole returns of early, mostly random play
    progress = read_json(jobs[algorithm] / "checkpoints" / "progress.json")
    state = jobs[algorithm] / "checkpoints" / progress["state"]
    assert (state / "learner_group" / "learner" / "rl_module" / "default_policy").is_dir()


def test_ppo_resumes_from_its_checkpoint(jobs, tmp_path):
    first = read_json(jobs["ppo"] / "model" / "metadata.json")
    root = tmp_path / "job"
    shutil.copytree(jobs["ppo"] / "checkpoints", root / "checkpoints")
    write_job(root, "ppo", {**CARTPOLE, "total_timesteps": 4000}, seed=1)
    assert finish(root, start(root)) == 0, log(root)[-3000:]
    meta = read_json(root / "model" / "metadata.json")
    assert meta["resumed_from_env_steps"] == first["env_steps"] == 2000
    assert meta["env_steps"] == 4000  # one more iteration of 2,000 steps, not two
    assert meta["episodes"] > first["episodes"]
    curve = read_json(root / "model" / "training_returns.json")
    assert [p["env_steps"] for p in curve] == [2000, 4000]
    assert curve[0] == read_json(jobs["ppo"] / "model" / "training_returns.json")[0]


def test_the_ppo_policy_round_trips_through_mlflow(jobs, tmp_path):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("rl", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=PolicyModel(),
                artifacts={"model_dir": str(jobs["ppo"] / "model")},
                pip_requirements=["ray[rllib]", "torch", "gymnasium", "numpy", "pandas"],
            )
        model = mlflow.pyfunc.load_model(info.model_uri)
    finally:
        mlflow.set_tracking_uri(previous)
    observations = np.random.default_rng(2).normal(0, 0.1, size=(5, 4)).astype(np.float32)
    frame = pd.DataFrame(observations, columns=[f"observation_{i}" for i in range(4)])
    assert np.array_equal(model.predict(frame), load_policy(jobs["ppo"] / "model").act(observations))
    with pytest.raises(ValueError, match="each row must hold 4 observation values"):
        model.predict(observations[:, :3])
