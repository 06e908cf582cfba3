"""Local training jobs: the container's program as a subprocess, under the SageMaker contract.

Each job gets ``settings.home/jobs/<job_name>/`` playing the role of ``/opt/ml``:
``input/config/hyperparameters.json`` (every value a JSON-encoded string, as SageMaker writes
it), ``input/data/<channel>`` (a link to the channel's folder), then ``model/``,
``output/failure`` and ``training.log`` (stdout and stderr) from the program. ``job.json`` (the
request, process id and MLflow run id) is written at start and ``status.json`` (status, failure
reason, exit code, times, metrics) atomically when the job ends.

The program runs as ``python -m training_containers.<family>.train`` in its own process group
with an address-space limit (``settings.job_memory_limit_mb`` MiB) and a time limit
(``compute.max_runtime_s`` seconds) enforced by a watcher thread. Each job is one MLflow run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param

from mcp_server.backends.base import TrainingBackend
from mcp_server.backends.local.files import write_json_atomic, write_text_atomic
from mcp_server.backends.local.job_folder import (
    Job,
    Status,
    channel_folders,
    ended_status,
    final_status,
    iso,
    kill_group,
    parse_metrics,
    process_alive,
    read_log,
    read_status,
    to_training_job,
    watched,
    write_inputs,
)
from mcp_server.backends.local.launcher import (
    REPOSITORY_ROOT,
    JobProcess,
    job_environment,
    launch,
    start_ticks,
)
from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client
from mcp_server.backends.local.runtimes import OWNER_ENV
from mcp_server.core.models import TrainingJob, TrainingJobRequest
from mcp_server.core.spec.catalog import FAMILY_BY_ALGORITHM
from mcp_server.errors import NotFoundError, TrainingJobError
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class LocalTrainingBackend(TrainingBackend):
    """Runs training jobs as local subprocesses and tracks each as an MLflow run."""

    def __init__(self, settings: Settings) -> None:
        """Keep the settings; jobs live under ``settings.home / "jobs"``."""
        self._settings = settings
        self._root = settings.home / "jobs"
        self._lock = threading.Lock()
        self._client: Any = None

    def start_training_job(self, request: TrainingJobRequest) -> TrainingJob:
        """Start the job's program in a subprocess; an existing job name returns that job.

        Args:
            request: the job; ``channels`` are ``file://`` URIs of folders holding
                ``data.parquet`` (``train`` required); ``compute.max_runtime_s`` (seconds)
                bounds the run.

        Returns:
            The job as ``describe_training_job`` reports it (``InProgress`` when just started).

        Raises:
            TrainingJobError: unknown algorithm, missing or unreadable channel, or the process
                or its MLflow run cannot be started.
        """
        family = FAMILY_BY_ALGORITHM.get(request.algorithm)
        if family is None:
            raise TrainingJobError(
                f"no training program for algorithm {request.algorithm!r}; "
                f"available: {', '.join(sorted(FAMILY_BY_ALGORITHM))}"
            )
        channels = channel_folders(request.channels, request.task)
        with self._lock:
            self._root.mkdir(parents=True, exist_ok=True)
            job_dir = self._root / request.job_name
            try:
                job_dir.mkdir()
            except FileExistsError:
                return self.describe_training_job(request.job_name)
            try:
                self._launch(request, family, channels, job_dir)
            except Exception as err:
                shutil.rmtree(job_dir, ignore_errors=True)
                raise TrainingJobError(f"cannot start training job {request.job_name}: {err}") from err
        return self.describe_training_job(request.job_name)

    def describe_training_job(self, job_name: str) -> TrainingJob:
        """Return the job's status, metrics (parsed from its log) and artifact locations.

        A job whose runtime died while it ran is adopted: still running, it is watched by this
        runtime from now on; ended, it is finished from what its folder holds (``Completed``
        when it wrote its model, else ``Failed`` with its failure file or its log's last lines).

        Raises:
            NotFoundError: no job has that name.
        """
        job_dir = self._root / job_name
        if not _JOB_NAME.match(job_name) or not (job_dir / "job.json").is_file():
            raise NotFoundError(f"no training job named {job_name!r} under {self._root}")
        job = json.loads((job_dir / "job.json").read_text())
        status = read_status(job_dir)
        if status is None and not watched(job_dir):
            if process_alive(job["pid"], job_dir, job.get("start_ticks")):
                self._adopt(job_dir, job)
            else:
                status = read_status(job_dir) or self._finish(job_dir, job, ended_status(job_dir, job))
        return to_training_job(job_dir, job, status)

    def _adopt(self, job_dir: Path, job: Job) -> None:
        """Watch a job whose runtime died while it ran: it becomes this runtime's job.

        Its owner file names this runtime's lease (so the job does not end itself), and a
        watcher thread holding ``watcher.lock`` finishes it (status, MLflow run) when its process
        ends. Two runtimes adopting at once: the lock lets one watch.
        """
        lock = os.open(job_dir / "watcher.lock", os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            return
        lease = os.environ.get(OWNER_ENV)
        if lease:
            write_text_atomic(job_dir / "owner", lease)
        logger.info("adopted training job %s (pid %s)", job_dir.name, job["pid"])
        threading.Thread(
            target=self._watch_adopted, args=(job_dir, job, lock), name=f"adopted-{job_dir.name}", daemon=True
        ).start()

    def _watch_adopted(self, job_dir: Path, job: Job, lock: int) -> None:
        max_runtime_s = job["request"]["compute"]["max_runtime_s"]
        started = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00")).timestamp()
        try:
            while process_alive(job["pid"], job_dir, job.get("start_ticks")):
                if time.time() - started > max_runtime_s:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(job["pid"], signal.SIGKILL)
                    time.sleep(0.5)
                    if read_status(job_dir) is None:
                        timed_out = final_status(job_dir, -9, True, max_runtime_s)
                        self._finish(job_dir, job, {**ended_status(job_dir, job), **timed_out})
                    return
                time.sleep(0.5)
            if read_status(job_dir) is None:
                self._finish(job_dir, job, ended_status(job_dir, job))
        finally:
            os.close(lock)

    def _launch(
        self, request: TrainingJobRequest, family: str, channels: dict[str, Path], job_dir: Path
    ) -> None:
        write_inputs(request, channels, job_dir)
        run_id = self._start_run(request)
        # held by the watcher until status.json is written; the OS releases it if we die
        lock = os.open(job_dir / "watcher.lock", os.O_CREAT | os.O_RDWR)
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.time()
        try:
            process = self._spawn(family, channels, job_dir)
        except OSError:
            os.close(lock)
            self._client.set_terminated(run_id, "FAILED")
            raise
        job = {
            "request": request.model_dump(mode="json"),
            "family": family,
            "pid": process.pid,
            "start_ticks": start_ticks(process.pid),
            "run_id": run_id,
            "started_at": iso(started),
        }
        write_json_atomic(job_dir / "job.json", job)
        threading.Thread(
            target=self._watch,
            args=(job_dir, job, process, started, lock),
            name=f"job-{request.job_name}",
            daemon=True,
        ).start()

    def _spawn(self, family: str, channels: dict[str, Path], job_dir: Path) -> JobProcess:
        variables = {
            "MLOPS_OPT_ML": str(job_dir),
            "SM_MODEL_DIR": str(job_dir / "model"),
            "SM_OUTPUT_DATA_DIR": str(job_dir / "output" / "data"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
        }
        for name in channels:
            variables[f"SM_CHANNEL_{name.upper()}"] = str(job_dir / "input" / "data" / name)
        return launch(
            f"training_containers.{family}.train",
            job_environment(variables),
            REPOSITORY_ROOT,
            job_dir / "training.log",
            self._settings.job_memory_limit_mb,
            owner_file=job_dir / "owner",
        )

    def _watch(self, job_dir: Path, job: Job, process: JobProcess, started: float, lock: int) -> None:
        max_runtime_s = job["request"]["compute"]["max_runtime_s"]
        timed_out = False
        try:
            exit_code = process.wait(timeout=max_runtime_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            exit_code = kill_group(process)
        try:
            ended = time.time()
            status = final_status(job_dir, exit_code, timed_out, max_runtime_s)
            status.update(
                exit_code=exit_code,
                started_at=iso(started),
                ended_at=iso(ended),
                duration_s=round(ended - started, 3),
                metrics=parse_metrics(read_log(job_dir / "training.log")),
            )
            self._finish(job_dir, job, status)
        finally:
            os.close(lock)

    def _finish(self, job_dir: Path, job: Job, status: Status) -> Status:
        """End the MLflow run (metrics, log and metadata artifacts), then write status.json."""
        try:
            client = self._client or open_client(self._settings)
            now_ms = int(time.time() * 1000)
            metrics = [Metric(name, value, now_ms, 0) for name, value in status["metrics"].items()]
            if metrics:
                client.log_batch(job["run_id"], metrics=metrics)
            for artifact in (job_dir / "training.log", job_dir / "model" / "metadata.json"):
                if artifact.is_file():
                    client.log_artifact(job["run_id"], str(artifact))
            client.set_terminated(job["run_id"], "FINISHED" if status["status"] == "Completed" else "FAILED")
        except Exception:  # the job's own status must be written even when tracking fails
            logger.exception("could not finish MLflow run %s of job %s", job["run_id"], job_dir.name)
        finally:
            write_json_atomic(job_dir / "status.json", status)
        return status

    def _start_run(self, request: TrainingJobRequest) -> str:
        if self._client is None:
            self._client = open_client(self._settings)
        experiment_id = ensure_experiment(self._client, request.experiment, self._settings)
        tags = {
            **request.tags,
            "job_name": request.job_name,
            "algorithm": request.algorithm,
            "task": request.task,
        }
        run_id = self._client.create_run(experiment_id, run_name=request.job_name, tags=tags).info.run_id
        params = {
            **request.hyperparameters,
            "algorithm": request.algorithm,
            "task": request.task,
            "target": request.target,
            **flatten("preprocessing", request.preprocessing.model_dump(mode="json")),
        }
        self._client.log_batch(run_id, params=[Param(k, _param_text(v)) for k, v in params.items()])
        return run_id


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flatten nested mappings to dotted keys: ``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    return {k: v for key, item in value.items() for k, v in flatten(f"{prefix}.{key}", item).items()}


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
