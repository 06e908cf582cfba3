"""The A3C program as a local job (forked from the warm fork server, under the memory limit).

One module fixture trains A3C on CartPole-v1 until the mean return of its last 20 training
episodes reaches 150 (a random policy scores about 22); the tests read what it left: the model
folder, the metric lines, the checkpoint. Then the job is resumed from its checkpoint, the
evaluation program plays the policy, and the policy goes through a real MLflow store. The greedy
return of such a half-trained policy varies from run to run (A3C's workers interleave freely), so
the evaluation test checks the episodes it reports against an independent replay, not their level.
The last test runs a short A3C job through the real LocalTrainingBackend (status, parsed metrics).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.functional.rl_job import finish, log, metrics, read_json, run_evaluation, start, write_job
from training_containers.rl.policy import A3CPolicy, PolicyModel, load_policy

pytestmark = pytest.mark.slow

#: Mean training return the job must reach; a uniformly random CartPole policy averages about 22.
GOAL = 150
ENVIRONMENT = {
    "name": "CartPole-v1",
    "total_timesteps": 80_000,
    "stop_mean_return": GOAL,
    "evaluation_episodes": 5,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = write_job(tmp_path_factory.mktemp("a3c") / "job", "a3c", ENVIRONMENT, seed=3)
    job = start(root, warm=True)
    assert finish(root, job) == 0, log(root)[-3000:]
    return root


def test_a3c_reaches_the_goal_and_stops_there(trained):
    meta = read_json(trained / "model" / "metadata.json")
    assert meta["stopped_because"] == "stop_mean_return"
    assert meta["final_mean_return"] >= GOAL
    assert meta["env_steps"] < ENVIRONMENT["total_timesteps"]
    assert meta["algorithm"] == "a3c" and meta["task"] == "control"
    assert meta["observation_shape"] == [4] and meta["n_actions"] == 2
    assert meta["hyperparameters"]["num_workers"] == 2 and meta["hyperparameters"]["n_steps"] == 20
    assert meta["training_duration_s"] > 0
    assert {"torch", "gymnasium", "numpy"} <= set(meta["library_versions"])


def test_the_metric_lines_follow_training(trained):
    found = metrics(trained)
    meta = read_json(trained / "model" / "metadata.json")
    assert found["train_mean_return"] >= GOAL
    assert found["train_env_steps"] == meta["env_steps"]
    assert found["train_episodes"] == meta["episodes"] > 0
    assert log(trained).count("train_mean_return=") >= 2  # one line per report, not only the last


def test_the_return_curve_is_saved(trained):
    curve = read_json(trained / "model" / "training_returns.json")
    steps = [point["env_steps"] for point in curve]
    assert steps == sorted(steps) and len(curve) >= 2
    assert curve[-1]["mean_return"] >= GOAL
    assert all(point["time_s"] > 0 for point in curve)


def test_a_checkpoint_is_left_for_a_restart(trained):
    progress = read_json(trained / "checkpoints" / "progress.json")
    assert (trained / "checkpoints" / progress["state"]).is_file()
    assert progress["env_steps"] == read_json(trained / "model" / "metadata.json")["env_steps"]


def test_the_policy_loads_and_acts_greedily(trained):
    policy = load_policy(trained / "model")
    observations = np.random.default_rng(0).normal(0, 0.05, size=(8, 4))
    actions = policy.act(observations)
    assert actions.shape == (8,) and set(actions.tolist()) <= {0, 1}
    assert np.array_equal(actions, policy.act(observations))  # greedy: no sampling


def test_a_restarted_job_resumes_from_its_checkpoint(trained, tmp_path):
    first = read_json(trained / "model" / "metadata.json")
    root = tmp_path / "job"
    shutil.copytree(trained / "checkpoints", root / "checkpoints")
    more = first["env_steps"] + 2000
    write_job(root, "a3c", {**ENVIRONMENT, "stop_mean_return": None, "total_timesteps": more}, seed=3)
    assert finish(root, start(root, warm=False)) == 0, log(root)[-3000:]  # cold: a fresh interpreter
    meta = read_json(root / "model" / "metadata.json")
    assert meta["resumed_from_env_steps"] == first["env_steps"]
    assert meta["env_steps"] >= more
    assert meta["training_duration_s"] > first["training_duration_s"]
    curve = read_json(root / "model" / "training_returns.json")
    assert curve[: len(read_json(trained / "model" / "training_returns.json"))] == read_json(
        trained / "model" / "training_returns.json"
    )
    assert curve[-1]["env_steps"] >= more


def test_the_evaluation_plays_the_policy(trained, tmp_path):
    config = {
        "evaluation_id": "eval-a3c",
        "task": "control",
        "algorithm": "a3c",
        "metrics": ["mean_return", "std_return"],
        "seed": 7,
        "environment": ENVIRONMENT,
    }
    assert run_evaluation(tmp_path, trained / "model", config) == 0, (tmp_path / "evaluation.log").read_text()
    report = read_json(tmp_path / "output" / "report.json")
    returns = report["details"]["episode_returns"]
    assert report["n_test"] == len(returns) == 5
    assert report["metrics"]["mean_return"] == pytest.approx(np.mean(returns))
    assert returns == replay(load_policy(trained / "model"), seeds=range(7, 12))  # real episodes
    assert report["details"]["episode_lengths"] == [int(r) for r in returns]  # CartPole: +1 per step
    assert report["metrics"]["std_return"] == pytest.approx(np.std(returns))
    assert report["train_metrics"]["mean_return"] >= GOAL
    assert report["n_train"] == read_json(trained / "model" / "metadata.json")["env_steps"]
    assert all((tmp_path / "output" / path).stat().st_size > 1000 for path in report["plots"].values())
    assert report["notes"] and "greedy episodes of CartPole-v1" in report["notes"][0]
    assert (
        f"test_mean_return={report['metrics']['mean_return']:.6g}"
        in (tmp_path / "evaluation.log").read_text()
    )


def replay(policy, seeds) -> list[float]:
    """Play one greedy CartPole-v1 episode per seed, independently of the evaluation program."""
    import gymnasium

    env, returns = gymnasium.make("CartPole-v1"), []
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(int(policy.act(observation[None])[0]))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return returns


def test_the_policy_round_trips_through_mlflow(trained, tmp_path):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("rl", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=PolicyModel(),
                artifacts={"model_dir": str(trained / "model")},
                pip_requirements=["torch", "gymnasium", "numpy", "pandas"],
            )
        model = mlflow.pyfunc.load_model(info.model_uri)
    finally:
        mlflow.set_tracking_uri(previous)
    observations = np.random.default_rng(1).normal(0, 0.1, size=(6, 4)).astype(np.float32)
    frame = pd.DataFrame(observations[:, ::-1], columns=[f"observation_{i}" for i in (3, 2, 1, 0)])
    expected = load_policy(trained / "model").act(observations)
    assert np.array_equal(model.predict(frame), expected)  # columns taken by name, not position
    assert np.array_equal(model.predict(observations), expected)


def test_the_local_training_backend_runs_a3c(tmp_path):
    from mcp_server.backends.local.training import LocalTrainingBackend
    from mcp_server.core.models import TrainingJobRequest
    from mcp_server.core.spec.schema import ComputeSpec, EnvironmentSpec, PreprocessingSpec
    from mcp_server.settings import Settings

    backend = LocalTrainingBackend(Settings(home=tmp_path, allow_write=True))
    request = TrainingJobRequest(
        job_name="a3c-backend",
        task="control",
        algorithm="a3c",
        hyperparameters={"num_workers": 2},
        preprocessing=PreprocessingSpec(),
        target=None,
        feature_types={},
        channels={},
        environment=EnvironmentSpec(name="CartPole-v1", total_timesteps=3000),
        compute=ComputeSpec(max_runtime_s=120),
        experiment="issue-rl",
    )
    backend.start_training_job(request)
    deadline = time.monotonic() + 150
    while (job := backend.describe_training_job("a3c-backend")).status == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert job.status == "Completed", job.failure_reason
    assert job.metrics["train_env_steps"] >= 3000 and job.metrics["train_episodes"] > 0
    assert isinstance(load_policy(Path(job.model_uri.removeprefix("file://"))), A3CPolicy)
