"""Pure parts of the reinforcement-learning program: return window, stop rule, checkpoints, defaults."""

from __future__ import annotations

import json

import pytest
import torch

from mcp_server.core.spec.hyperparameters import A3CHyperparameters, DQNHyperparameters, PPOHyperparameters
from mcp_server.core.spec.schema import EnvironmentSpec
from training_containers.rl.a3c import ActorCritic, SharedAdam
from training_containers.rl.progress import CheckpointStore, EpisodeWindow, Progress, stop_reason
from training_containers.rl.train import DEFAULTS, ENVIRONMENT_DEFAULTS, resolve_environment


@pytest.mark.parametrize(
    ("algorithm", "model"),
    [("ppo", PPOHyperparameters), ("dqn", DQNHyperparameters), ("a3c", A3CHyperparameters)],
)
def test_the_container_defaults_mirror_the_spec(algorithm, model):
    assert DEFAULTS[algorithm] == model().model_dump(mode="json")


def test_the_environment_defaults_mirror_the_spec():
    spec = EnvironmentSpec(name="CartPole-v1").model_dump(mode="json")
    assert resolve_environment({"name": "CartPole-v1"}) == spec
    assert set(ENVIRONMENT_DEFAULTS) | {"name"} == set(spec)


def test_an_environment_section_needs_a_known_shape():
    with pytest.raises(ValueError, match="needs _environment.name"):
        resolve_environment({"total_timesteps": 10})
    with pytest.raises(ValueError, match=r"unknown environment keys \['episodes'\]"):
        resolve_environment({"name": "CartPole-v1", "episodes": 3})


def test_the_window_keeps_the_last_episodes():
    window = EpisodeWindow(size=3)
    assert window.mean() is None
    for value in (10, 20, 30, 40):
        window.add(value)
    assert window.mean() == pytest.approx(30)  # 20, 30, 40


def test_the_window_weights_batches_by_their_episodes():
    window = EpisodeWindow(size=4)
    window.add(100.0, 10)  # an old iteration of 10 episodes averaging 10
    window.add(3 * 200.0, 3)  # 3 episodes averaging 200
    window.add(2 * 300.0, 2)  # 2 episodes averaging 300: the newest two batches hold 5 >= 4
    assert window.mean() == pytest.approx((600 + 600) / 5)
    again = EpisodeWindow.restore(json.loads(json.dumps(window.entries())), size=4)
    assert again.mean() == window.mean()


def test_training_stops_at_the_goal_or_the_budget():
    environment = {"total_timesteps": 1000, "stop_mean_return": 450}
    assert stop_reason(Progress(env_steps=10, mean_return=449.9), environment) is None
    assert stop_reason(Progress(env_steps=10, mean_return=450), environment) == "stop_mean_return"
    assert stop_reason(Progress(env_steps=1000, mean_return=20), environment) == "total_timesteps"
    assert stop_reason(Progress(env_steps=10, mean_return=None), environment) is None
    assert (
        stop_reason(Progress(env_steps=999, mean_return=500), {**environment, "stop_mean_return": None})
        is None
    )


def test_a_checkpoint_names_its_state_and_drops_older_ones(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints")
    assert store.latest() is None
    store.save(Progress(env_steps=100, curve=[{"env_steps": 100, "mean_return": 9, "time_s": 1}]), write("a"))
    store.save(Progress(env_steps=200), write("b"))
    progress, state = store.latest()
    assert progress.env_steps == 200 and progress.state == "state-200"
    assert state.read_text() == "b"
    assert sorted(p.name for p in store.folder.iterdir()) == ["progress.json", "state-200"]


def test_a_state_written_without_its_progress_record_is_not_resumed(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save(Progress(env_steps=100), write("done"))
    (tmp_path / "state-300").write_text("interrupted")  # the job died before progress.json
    progress, state = store.latest()
    assert progress.env_steps == 100 and state.read_text() == "done"


def test_a_progress_record_without_its_state_is_an_error(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save(Progress(env_steps=100), write("x"))
    (tmp_path / "state-100").unlink()
    with pytest.raises(ValueError, match="names the state 'state-100', which is not in"):
        store.latest()


def test_the_shared_adam_keeps_its_state_in_shared_memory_across_a_restore(tmp_path):
    network = ActorCritic(4, 2, [8])
    optimizer = SharedAdam(network.parameters(), lr=0.01)
    assert all(t.is_shared() for s in optimizer.state.values() for t in s.values())
    sum(out.sum() for out in network(torch.ones(1, 4))).backward()
    optimizer.step()
    torch.save(optimizer.state_dict(), tmp_path / "adam.pt")  # as a checkpoint does
    restored = SharedAdam(ActorCritic(4, 2, [8]).parameters(), lr=0.01)
    restored.load_state_dict(torch.load(tmp_path / "adam.pt", weights_only=True))
    assert not all(t.is_shared() for s in restored.state.values() for t in s.values())  # loaded: private
    restored.share_state()
    assert all(t.is_shared() for s in restored.state.values() for t in s.values())
    assert all(float(s["step"]) == 1.0 for s in restored.state.values())


def write(text: str):
    return lambda path: path.write_text(text)
