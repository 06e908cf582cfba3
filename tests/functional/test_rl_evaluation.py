"""The control evaluation (``training_containers.evaluation.control``) in-process, on real episodes.

The policy is an untrained A3C network saved the way the training program saves it: what is
checked here is the evaluation's own behaviour (fields, plots, errors), not the policy's level.
"""

from __future__ import annotations

import json

import pytest
import torch

from training_containers.evaluation.control import evaluate, play
from training_containers.evaluation.processing import EvaluationConfig, ProcessingContract
from training_containers.rl.a3c import ActorCritic
from training_containers.rl.environment import EnvironmentInfo
from training_containers.rl.greedy import load_policy, save_a3c_network

ENVIRONMENT = {
    "name": "CartPole-v1",
    "total_timesteps": 1000,
    "stop_mean_return": None,
    "evaluation_episodes": 4,
}


@pytest.fixture
def contract(tmp_path):
    contract = ProcessingContract.from_env({"MLOPS_PROCESSING_ROOT": str(tmp_path)})
    torch.manual_seed(0)
    info = EnvironmentInfo("CartPole-v1", (4,), 2, 500)
    save_a3c_network(contract.model_dir / "policy", ActorCritic(4, 2, [16]), info, {"hidden_layers": [16]})
    metadata = {
        "algorithm": "a3c",
        "policy_format": "a3c_torch",
        "observation_shape": [4],
        "n_actions": 2,
        "env_steps": 1234,
        "episodes": 50,
        "training_duration_s": 3.5,
        "final_mean_return": 61.0,
        "stopped_because": "total_timesteps",
        "environment": ENVIRONMENT,
    }
    (contract.model_dir / "metadata.json").write_text(json.dumps(metadata))
    curve = [
        {"env_steps": 600, "mean_return": 30.0, "time_s": 1.0},
        {"env_steps": 1234, "mean_return": 61.0, "time_s": 3.5},
    ]
    (contract.model_dir / "training_returns.json").write_text(json.dumps(curve))
    return contract


def config(**overrides) -> EvaluationConfig:
    values = {"evaluation_id": "eval-1", "task": "control", "metrics": ["mean_return"], "seed": 11}
    return EvaluationConfig(**{**values, "environment": ENVIRONMENT, **overrides})


def test_the_report_has_the_control_fields(contract, capsys):
    report = evaluate(contract, config())
    assert set(report) == {
        "metrics",
        "train_metrics",
        "validation_metrics",
        "gaps",
        "n_test",
        "n_validation",
        "n_train",
        "plots",
        "details",
        "notes",
        "algorithm",
    }
    assert set(report["metrics"]) == {"mean_return", "std_return", "mean_episode_length"}
    assert report["train_metrics"] == {
        "mean_return": 61.0,
        "env_steps": 1234.0,
        "episodes": 50.0,
        "training_duration_s": 3.5,
    }
    assert (report["n_test"], report["n_validation"], report["n_train"]) == (4, 0, 1234)
    assert report["validation_metrics"] == {} and report["gaps"] == {}
    assert (
        report["details"]["episode_returns"] == play(load_policy(contract.model_dir), "CartPole-v1", 4, 11)[0]
    )
    assert report["details"]["reward_threshold"] == 475.0
    assert any("total_timesteps budget" in note for note in report["notes"])
    for relative in report["plots"].values():
        assert (contract.output_dir / relative).read_bytes()[:4] == b"\x89PNG"
    assert f"test_mean_return={report['metrics']['mean_return']:.6g}" in capsys.readouterr().out


def test_a_metric_the_evaluation_does_not_produce_is_an_error(contract):
    with pytest.raises(ValueError, match=r"cannot compute \['accuracy'\] for a control task"):
        evaluate(contract, config(metrics=["mean_return", "accuracy"]))


def test_a_policy_for_other_spaces_is_refused(contract):
    acrobot = {**ENVIRONMENT, "name": "Acrobot-v1"}
    with pytest.raises(
        ValueError, match=r"trained on observations \[4\] and 2 actions .* Acrobot-v1 has \[6\] and 3"
    ):
        evaluate(contract, config(environment=acrobot))
