"""Training progress of a reinforcement-learning job: totals, return curve, checkpoints, stop rule.

The totals (environment steps, episodes, training seconds) and the return curve continue across
restarts: a job that finds a checkpoint in ``/opt/ml/checkpoints`` (SageMaker copies it back
after a spot interruption) resumes from it. A checkpoint is a state folder or file written by
the algorithm (``state-<env_steps>``) plus ``progress.json``, written last and atomically, that
names it: a checkpoint interrupted while being written is never picked up.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training_containers.common.contract import write_metric_lines
from training_containers.common.metrics import format_metric_lines

#: Seconds of training between two periodic checkpoints.
CHECKPOINT_INTERVAL_S = 30.0
#: Finished training episodes whose returns make the mean training return (stop rule, metrics).
RETURN_WINDOW = 20
PROGRESS_FILE = "progress.json"


@dataclass
class Progress:
    """Running totals of one training, continued across resumes.

    Attributes:
        env_steps: environment steps sampled so far.
        episodes: episodes finished so far.
        training_s: seconds of training before the current process started (resumes add up).
        mean_return: the latest mean training episode return, or None before any episode ended.
        curve: one point per report: ``{"env_steps", "mean_return", "time_s"}`` (time_s: training
            seconds since the first start).
        resumed_from_env_steps: env_steps of the checkpoint this process resumed from, or None.
        state: name of the algorithm's state next to ``progress.json`` (set by ``save``).
        extra: algorithm-specific values to carry over (e.g. the return window's batches).
    """

    env_steps: int = 0
    episodes: int = 0
    training_s: float = 0.0
    mean_return: float | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    resumed_from_env_steps: int | None = None
    state: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self, env_steps: int, episodes: int, mean_return: float | None, time_s: float) -> None:
        """Record the totals, append a curve point and print the ``train_*`` metric lines.

        Args:
            env_steps: environment steps sampled so far (all processes, all restarts).
            episodes: episodes finished so far.
            mean_return: mean return of the recent training episodes; None keeps the last one.
            time_s: training seconds since the first start.
        """
        self.env_steps, self.episodes = int(env_steps), int(episodes)
        if mean_return is not None:
            self.mean_return = float(mean_return)
        values = {"env_steps": float(self.env_steps), "episodes": float(self.episodes), "time_s": time_s}
        if self.mean_return is not None:
            self.curve.append(
                {"env_steps": self.env_steps, "mean_return": self.mean_return, "time_s": round(time_s, 3)}
            )
            values = {"mean_return": self.mean_return, **values}
        write_metric_lines(format_metric_lines("train", values))


class EpisodeWindow:
    """Mean return of the most recent finished episodes, fed episode by episode or in batches.

    A batch is ``(sum of returns, number of episodes)``, e.g. one RLlib iteration. The mean
    covers the newest batches that together hold at least ``size`` episodes (exactly the last
    ``size`` episodes when fed one at a time).

    Args:
        size: the number of episodes the mean should cover.
    """

    def __init__(self, size: int = RETURN_WINDOW) -> None:
        """Start empty."""
        self.size = size
        self._batches: list[tuple[float, int]] = []

    @classmethod
    def restore(cls, entries: list[list[float]] | None, size: int = RETURN_WINDOW) -> EpisodeWindow:
        """Rebuild a window from ``entries()`` as saved in a checkpoint (None: empty)."""
        window = cls(size)
        for total, count in entries or []:
            window.add(float(total), int(count))
        return window

    def add(self, total_return: float, episodes: int = 1) -> None:
        """Add ``episodes`` finished episodes whose returns sum to ``total_return``."""
        if episodes > 0:
            self._batches.append((total_return, episodes))
            while sum(c for _, c in self._batches[1:]) >= self.size:
                self._batches.pop(0)

    def mean(self) -> float | None:
        """Return the mean return over the window, or None before any episode finished."""
        count = sum(c for _, c in self._batches)
        return sum(t for t, _ in self._batches) / count if count else None

    def entries(self) -> list[list[float]]:
        """Return the batches as ``[[total, count], ...]`` (JSON for a checkpoint)."""
        return [[total, count] for total, count in self._batches]


def stop_reason(progress: Progress, environment: dict[str, Any]) -> str | None:
    """Why training should stop now, or None to go on.

    Args:
        progress: the totals so far.
        environment: the spec's environment section (``total_timesteps``, ``stop_mean_return``).

    Returns:
        ``"stop_mean_return"`` once the mean training return reached ``stop_mean_return`` (when
        set), ``"total_timesteps"`` once ``env_steps`` reached ``total_timesteps``, else None.
    """
    goal = environment.get("stop_mean_return")
    if goal is not None and progress.mean_return is not None and progress.mean_return >= float(goal):
        return "stop_mean_return"
    if progress.env_steps >= int(environment["total_timesteps"]):
        return "total_timesteps"
    return None


class TrainingClock:
    """Training seconds since the first start: the resumed total plus this process's time."""

    def __init__(self, before_s: float) -> None:
        """Start counting now, on top of ``before_s`` seconds of earlier training."""
        self._before_s = before_s
        self._started = time.perf_counter()
        self._last_checkpoint = self._started

    def now_s(self) -> float:
        """Return the training seconds so far."""
        return self._before_s + time.perf_counter() - self._started

    def checkpoint_due(self) -> bool:
        """Whether ``CHECKPOINT_INTERVAL_S`` seconds passed since the last call that returned True."""
        if time.perf_counter() - self._last_checkpoint < CHECKPOINT_INTERVAL_S:
            return False
        self._last_checkpoint = time.perf_counter()
        return True


class CheckpointStore:
    """The checkpoints folder: ``progress.json`` and the state it names.

    Args:
        folder: ``contract.checkpoints_dir`` (created when saving).
    """

    def __init__(self, folder: Path) -> None:
        """Keep the folder; nothing is read or written yet."""
        self.folder = folder

    def latest(self) -> tuple[Progress, Path] | None:
        """Return the last complete checkpoint's progress and state path, or None.

        Raises:
            ValueError: ``progress.json`` exists but is not a progress record, or names a
                state that is missing (a checkpoint folder from another program).
        """
        path = self.folder / PROGRESS_FILE
        if not path.is_file():
            return None
        try:
            progress = Progress(**json.loads(path.read_text()))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path} is not a training progress record ({err}); empty the folder") from err
        state = self.folder / str(progress.state)
        if progress.state is None or not state.exists():
            raise ValueError(f"{path} names the state {progress.state!r}, which is not in {self.folder}")
        return progress, state

    def save(self, progress: Progress, write_state: Callable[[Path], None]) -> Path:
        """Write a checkpoint: the state first, then ``progress.json``; drop older states.

        Args:
            progress: the totals at this checkpoint (its ``state`` is set here).
            write_state: writes the algorithm's state to the path it is given (absolute; a
                folder or a file, the writer's choice).

        Returns:
            The new state's path.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"state-{progress.env_steps}"
        state = (self.folder / name).absolute()
        _remove(state)
        write_state(state)
        progress.state = name
        temporary = self.folder / f".{PROGRESS_FILE}.tmp"
        temporary.write_text(json.dumps(asdict(progress), indent=1))
        os.replace(temporary, self.folder / PROGRESS_FILE)
        for old in self.folder.glob("state-*"):
            if old.name != name:
                _remove(old)
        return state


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
