"""Local hyperparameter tuning jobs: an Optuna study whose every trial is a local training job.

``start_tuning_job`` writes the search's folder (``settings.home/tuning/<name>/``: ``request.json``
and ``status.json``) and returns at once; a background thread runs the search with Optuna's
ask-and-tell interface: it asks the sampler for a trial's hyperparameters, starts the trial as a
training job (``{name}-t{n}``) through the local training backend, keeps ``parallel_trials`` of
them running, and tells the study each trial's objective when its job ends. The samplers are
Optuna's ``GridSampler`` (grid), ``RandomSampler`` (random) and ``TPESampler`` (bayesian), seeded
with the dataset split's seed. Categorical values travel through Optuna as JSON strings, so any
value the hyperparameter accepts (a list of layer widths, null) can be searched.

``status.json`` (the ``TuningJob``) is rewritten atomically whenever a trial starts or ends, so
``describe_tuning_job`` reports progress, and answers after a restart. The search thread holds
``watcher.lock`` until the search has ended; a search whose status is still ``InProgress`` while
no thread holds the lock was interrupted (the server stopped) and is reported ``Failed`` as lost,
as training jobs are.

Tracking: the search is one MLflow run in the request's experiment; each trial's training run
is its child (tag ``mlflow.parentRunId``, which the training backend puts on the run with the
request's tags). The parent logs its parameters, each trial's objective (the objective metric,
step = trial number) and, at the end, the best trial and its values.

A trial whose job fails is recorded ``Failed`` with its reason and the search goes on; when
every trial failed, the tuning job fails with the first trial's reason.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from mlflow.entities import Param
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from mcp_server.backends.base import TrainingBackend, TuningBackend
from mcp_server.backends.local.files import write_json_atomic
from mcp_server.backends.local.job_folder import iso, watched
from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client
from mcp_server.core.jobs.tuning import (
    best_trial,
    every_trial_failed_reason,
    objective_of,
    short_reason,
    trial_request,
)
from mcp_server.core.models import TrainingJob, TuningJob, TuningJobRequest, TuningTrial
from mcp_server.core.spec.schema import TuningSpec
from mcp_server.core.spec.tuning import trial_count
from mcp_server.errors import MlopsError, NotFoundError, TrainingJobError
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
#: Seconds between two looks at the running trials' training jobs.
POLL_S = 0.1
_LOST = (
    "the hyperparameter tuning job was lost: the process running its search stopped while it ran "
    "(e.g. the server restarted); start it under a new name"
)


class LocalTuningBackend(TuningBackend):
    """Runs hyperparameter tuning jobs as Optuna studies over local training jobs."""

    def __init__(self, settings: Settings, training: TrainingBackend, poll_s: float = POLL_S) -> None:
        """Use ``training`` for the trials; searches live under ``settings.home / "tuning"``.

        Args:
            settings: the workspace settings.
            training: the training backend that runs every trial's job.
            poll_s: seconds between two looks at the running trials.
        """
        self._settings = settings
        self._training = training
        self._poll_s = poll_s
        self._root = settings.home / "tuning"
        self._lock = threading.Lock()
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    def start_tuning_job(self, request: TuningJobRequest) -> TuningJob:
        """Start the search in a background thread; an existing name returns that job unchanged.

        Args:
            request: the search and the template training job of its trials (``file://``
                channels, as for local training jobs).

        Returns:
            The tuning job, ``InProgress`` with no trial ended yet.

        Raises:
            TrainingJobError: the search space cannot be searched, or the search's folder or
                tracking run cannot be created.
        """
        name = request.tuning_job_name
        try:
            distributions = search_distributions(request.tuning)
        except ValueError as err:
            raise TrainingJobError(f"cannot search the space of {name}: {err}") from err
        with self._lock:
            self._root.mkdir(parents=True, exist_ok=True)
            folder = self._root / name
            try:
                folder.mkdir()
            except FileExistsError:
                return self.describe_tuning_job(name)
            try:
                self._launch(request, distributions, folder)
            except Exception as err:
                shutil.rmtree(folder, ignore_errors=True)
                raise TrainingJobError(f"cannot start hyperparameter tuning job {name}: {err}") from err
        return self.describe_tuning_job(name)

    def describe_tuning_job(self, name: str) -> TuningJob:
        """Return the search's status and every trial so far (see the module docstring).

        A search still ``InProgress`` whose thread is gone (the server restarted) is reported
        ``Failed`` as lost, and recorded so.

        Raises:
            NotFoundError: no tuning job has that name.
        """
        folder = self._root / name
        if not _NAME.match(name) or not (folder / "status.json").is_file():
            raise NotFoundError(f"no hyperparameter tuning job named {name!r} under {self._root}")
        job = _read(folder)
        if job.status == "InProgress" and not watched(folder):
            job = _read(folder)  # the search may have ended between the two reads
            if job.status == "InProgress":
                job = self._lose(folder, job)
        return job

    def _launch(
        self, request: TuningJobRequest, distributions: dict[str, BaseDistribution], folder: Path
    ) -> None:
        metric, direction = objective_of(request)
        tuning = request.tuning
        started = time.time()
        job = TuningJob(
            name=request.tuning_job_name,
            status="InProgress",
            algorithm=request.training.algorithm,
            strategy=tuning.strategy,
            objective_metric=metric,
            direction=direction,
            max_trials=trial_count(tuning.strategy, tuning.max_trials, tuning.search_space),
            parallel_trials=tuning.parallel_trials,
            tracking_run_id=self._start_parent_run(request, metric, direction),
            started_at=iso(started),
        )
        # held by the search thread until the search has ended; the OS releases it if we die
        lock = os.open(folder / "watcher.lock", os.O_CREAT | os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            write_json_atomic(folder / "request.json", request.model_dump(mode="json"))
            _save(folder, job)
        except BaseException:
            os.close(lock)
            raise
        search = _Search(self._settings, self._training, request, distributions, job, folder, started)
        search.poll_s = self._poll_s
        threading.Thread(
            target=search.run, args=(lock,), name=f"tuning-{request.tuning_job_name}", daemon=True
        ).start()

    def _start_parent_run(self, request: TuningJobRequest, metric: str, direction: str) -> str:
        client = open_client(self._settings)
        experiment_id = ensure_experiment(client, request.training.experiment, self._settings)
        tags = {
            **request.training.tags,
            "tuning_job": request.tuning_job_name,
            "algorithm": request.training.algorithm,
            "task": request.training.task,
            "objective_metric": metric,
        }
        run = client.create_run(experiment_id, run_name=request.tuning_job_name, tags=tags)
        tuning = request.tuning
        params = {
            "strategy": tuning.strategy,
            "objective": tuning.objective,
            "objective_metric": metric,
            "direction": direction,
            "max_trials": tuning.max_trials,
            "parallel_trials": tuning.parallel_trials,
            **{
                f"search_space.{name}": json.dumps(p.model_dump(mode="json", exclude_none=True))
                for name, p in tuning.search_space.items()
            },
        }
        # MLflow keeps at most 6,000 characters of a parameter's value
        client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        return str(run.info.run_id)

    def _lose(self, folder: Path, job: TuningJob) -> TuningJob:
        ended = time.time()
        trials = [
            t.model_copy(update={"status": "Failed", "failure_reason": _LOST})
            if t.status == "InProgress"
            else t
            for t in job.trials
        ]
        lost = job.model_copy(
            update={"status": "Failed", "failure_reason": _LOST, "trials": trials, "ended_at": iso(ended)}
        )
        _end_parent_run(self._settings, lost)
        _save(folder, lost)
        return lost


class _Search:
    """One search: the ask-and-tell loop of an Optuna study over training jobs (see the module)."""

    def __init__(
        self,
        settings: Settings,
        training: TrainingBackend,
        request: TuningJobRequest,
        distributions: dict[str, BaseDistribution],
        job: TuningJob,
        folder: Path,
        started: float,
    ) -> None:
        self.settings = settings
        self.training = training
        self.request = request
        self.distributions = distributions
        self.job = job
        self.folder = folder
        self.started = started
        self.poll_s = POLL_S
        self.client: Any = None

    def run(self, lock: int) -> None:
        """Run every trial, then record the outcome; ``lock`` is released when the search has ended."""
        try:
            self.client = open_client(self.settings)
            self._search()
            self._finish()
        except Exception as err:  # a bug or a broken store: the search ends Failed, never silently
            logger.exception("hyperparameter tuning job %s stopped", self.job.name)
            self._end(status="Failed", failure_reason=f"the search stopped: {type(err).__name__}: {err}")
        finally:
            os.close(lock)

    def _search(self) -> None:
        study = optuna.create_study(
            direction=self.job.direction,
            sampler=make_sampler(self.request.tuning, self.request.training.seed),
        )
        total, parallel = self.job.max_trials, min(self.job.parallel_trials, self.job.max_trials)
        running: dict[int, optuna.trial.Trial] = {}
        number = 0
        while number < total or running:
            while len(running) < parallel and number < total:
                number += 1
                trial = study.ask(self.distributions)
                if self._start_trial(number, decode_params(trial.params, self.distributions)):
                    running[number] = trial
                else:
                    study.tell(trial, state=TrialState.FAIL)
            time.sleep(self.poll_s)
            for done in [n for n in running if self._poll_trial(n)]:
                record = self.job.trials[done - 1]
                if record.status == "Completed":
                    study.tell(running.pop(done), record.objective)
                else:
                    study.tell(running.pop(done), state=TrialState.FAIL)

    def _start_trial(self, number: int, hyperparameters: dict[str, Any]) -> bool:
        request = trial_request(self.request, number, hyperparameters, self.job.tracking_run_id)
        record = TuningTrial(
            number=number, job_name=request.job_name, hyperparameters=hyperparameters, status="InProgress"
        )
        try:
            job = self.training.start_training_job(request)
            record = record.model_copy(update={"tracking_run_id": job.tracking_run_id})
            started = True
        except MlopsError as err:
            record = record.model_copy(update={"status": "Failed", "failure_reason": short_reason(str(err))})
            started = False
        self._update(trials=[*self.job.trials, record])
        return started

    def _poll_trial(self, number: int) -> bool:
        """Update trial ``number`` from its training job; True once the job has ended."""
        record = self.job.trials[number - 1]
        try:
            job = self.training.describe_training_job(record.job_name)
        except MlopsError as err:
            job = TrainingJob(
                job_name=record.job_name, status="Failed", algorithm="", failure_reason=str(err)
            )
        if job.status == "InProgress":
            return False
        updated = self._ended_trial(record, job)
        trials = list(self.job.trials)
        trials[number - 1] = updated
        best = best_trial(trials, self.job.direction)
        self._update(trials=trials, best_trial=best.number if best else None)
        if updated.objective is not None and self.job.tracking_run_id:
            try:
                self.client.log_metric(
                    self.job.tracking_run_id, self.job.objective_metric, updated.objective, step=number
                )
            except Exception:  # tracking is a record of the search, never a reason to stop it
                logger.exception("could not log trial %s of %s", number, self.job.name)
        return True

    def _ended_trial(self, record: TuningTrial, job: TrainingJob) -> TuningTrial:
        metric = self.job.objective_metric
        value = job.metrics.get(metric)
        update: dict[str, Any] = {
            "duration_s": job.duration_s,
            "tracking_run_id": job.tracking_run_id or record.tracking_run_id,
        }
        if job.status != "Completed":
            return record.model_copy(
                update={**update, "status": "Failed", "failure_reason": short_reason(job.failure_reason)}
            )
        if value is None or not math.isfinite(value):
            reason = (
                f"the training job printed no {metric} line"
                if value is None
                else f"its objective {metric} is {value}, not a finite number"
            )
            return record.model_copy(update={**update, "status": "Failed", "failure_reason": reason})
        return record.model_copy(update={**update, "status": "Completed", "objective": value})

    def _finish(self) -> None:
        if self.job.best() is None:
            self._end(status="Failed", failure_reason=every_trial_failed_reason(self.job.trials))
        else:
            self._end(status="Completed")

    def _end(self, **outcome: Any) -> None:
        """End the tracking run, then write the final status: a finished search is fully recorded."""
        ended = time.time()
        final = self.job.model_copy(
            update={**outcome, "ended_at": iso(ended), "duration_s": round(ended - self.started, 3)}
        )
        _end_parent_run(self.settings, final, self.client)
        self.job = final
        _save(self.folder, final)

    def _update(self, **changes: Any) -> None:
        self.job = self.job.model_copy(update=changes)
        _save(self.folder, self.job)


def search_distributions(tuning: TuningSpec) -> dict[str, BaseDistribution]:
    """Return the Optuna distribution of each searched hyperparameter.

    ``int`` -> ``IntDistribution``, ``float`` -> ``FloatDistribution`` (both with ``log``),
    ``categorical`` -> ``CategoricalDistribution`` over the JSON encoding of each value.

    Raises:
        ValueError: a range Optuna refuses (e.g. low > high, or log with low <= 0).
    """
    distributions: dict[str, BaseDistribution] = {}
    for name, parameter in tuning.search_space.items():
        if parameter.type == "categorical":
            distributions[name] = CategoricalDistribution([json.dumps(v) for v in parameter.values or []])
            continue
        if parameter.low is None or parameter.high is None:
            raise ValueError(f"{name}: type {parameter.type} needs low and high")
        if parameter.type == "int":
            distributions[name] = IntDistribution(int(parameter.low), int(parameter.high), log=parameter.log)
        else:
            distributions[name] = FloatDistribution(parameter.low, parameter.high, log=parameter.log)
    return distributions


def make_sampler(tuning: TuningSpec, seed: int) -> optuna.samplers.BaseSampler:
    """Return the seeded Optuna sampler of the strategy.

    grid: ``GridSampler`` over the categorical values (its trials run the grid in a shuffled,
    seeded order, each combination once). random: ``RandomSampler``. bayesian: ``TPESampler``
    with half the trials (at most Optuna's default of 10) sampled at random first, and the
    constant liar so parallel trials do not all explore the same region.
    """
    if tuning.strategy == "grid":
        space = {name: [json.dumps(v) for v in p.values or []] for name, p in tuning.search_space.items()}
        return _GridSampler(space, seed=seed)
    if tuning.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = max(1, min(10, tuning.max_trials // 2))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for an ask-and-tell loop that runs exactly the grid's trials.

    ``GridSampler.after_trial`` calls ``study.stop()`` once the grid is exhausted, which Optuna
    allows only inside ``study.optimize``; the search stops by itself after the grid size.
    """

    def after_trial(self, study: Any, trial: Any, state: TrialState, values: Any) -> None:
        """Do nothing: the search runs the grid size of trials (see the class docstring)."""


def decode_params(params: dict[str, Any], distributions: dict[str, BaseDistribution]) -> dict[str, Any]:
    """Turn an Optuna trial's parameters into hyperparameter values (categorical ones JSON-decoded)."""
    return {
        name: json.loads(value) if isinstance(distributions[name], CategoricalDistribution) else value
        for name, value in params.items()
    }


def _read(folder: Path) -> TuningJob:
    return TuningJob.model_validate_json((folder / "status.json").read_text())


def _save(folder: Path, job: TuningJob) -> None:
    write_json_atomic(folder / "status.json", job.model_dump(mode="json"))


def _end_parent_run(settings: Settings, job: TuningJob, client: Any = None) -> None:
    """Log the outcome on the search's tracking run and end it; tracking failures are only logged."""
    if not job.tracking_run_id:
        return
    try:
        client = client or open_client(settings)
        run_id = job.tracking_run_id
        best = job.best()
        client.log_metric(run_id, "trials_completed", sum(t.status == "Completed" for t in job.trials))
        client.log_metric(run_id, "trials_failed", sum(t.status == "Failed" for t in job.trials))
        if best is not None and best.objective is not None:
            client.log_metric(run_id, f"best_{job.objective_metric}", best.objective)
            client.set_tag(run_id, "best_trial", str(best.number))
            client.set_tag(run_id, "best_job_name", best.job_name)
            for name, value in best.hyperparameters.items():
                client.log_param(run_id, f"best.{name}", json.dumps(value))
        client.set_terminated(run_id, "FINISHED" if job.status == "Completed" else "FAILED")
    except Exception:  # the search's own status must be written even when tracking fails
        logger.exception("could not end the tracking run of hyperparameter tuning job %s", job.name)


__all__ = ["LocalTuningBackend", "decode_params", "make_sampler", "search_distributions"]
