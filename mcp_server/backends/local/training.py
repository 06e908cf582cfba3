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

import fcntl
import functools
import json
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param

import training_containers
from mcp_server.backends.base import TrainingBackend
from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client
from mcp_server.core.catalog import FAMILY_BY_ALGORITHM
from mcp_server.core.models import TrainingJob, TrainingJobRequest
from mcp_server.errors import NotFoundError, TrainingJobError
from mcp_server.settings import Settings

logger = logging.getLogger(__name__)

#: A metric line the programs print, e.g. ``validation_f1=0.97`` (names may hold digits: r2).
METRIC_LINE = re.compile(r"^([a-z][a-z0-9_]*)=([-+0-9.eE]+|[-+]?nan|[-+]?inf)$")
#: The estimator's random seed unless the request's hyperparameters carry ``_seed``.
DEFAULT_SEED = 0
#: The folder holding the ``training_containers`` package (the subprocess's working directory).
REPOSITORY_ROOT = Path(training_containers.__file__).resolve().parent.parent
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_KILL_GRACE_S = 5.0
_LOG_TAIL_LINES = 20
_REASON_MAX_CHARS = 2048

Job = dict[str, Any]  # the content of job.json
Status = dict[str, Any]  # the content of status.json


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
            raise TrainingJobError(f"no training program for algorithm {request.algorithm!r}; "
                                   f"available: {', '.join(sorted(FAMILY_BY_ALGORITHM))}")
        channels = _channel_folders(request.channels)
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

        A job with no ``status.json`` whose process is gone (the server restarted while it ran)
        is reported ``Failed`` as lost, and recorded so.

        Raises:
            NotFoundError: no job has that name.
        """
        job_dir = self._root / job_name
        if not _JOB_NAME.match(job_name) or not (job_dir / "job.json").is_file():
            raise NotFoundError(f"no training job named {job_name!r} under {self._root}")
        job = json.loads((job_dir / "job.json").read_text())
        status = _read_status(job_dir)
        if status is None and not _watched(job_dir) and not _process_alive(job["pid"], job_dir):
            status = _read_status(job_dir) or self._finish(job_dir, job, _lost_status(job_dir, job))
        return _to_training_job(job_dir, job, status)

    def _launch(self, request: TrainingJobRequest, family: str, channels: dict[str, Path],
                job_dir: Path) -> None:
        _write_inputs(request, channels, job_dir)
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
        job = {"request": request.model_dump(mode="json"), "family": family, "pid": process.pid,
               "run_id": run_id, "started_at": _iso(started)}
        _write_json(job_dir / "job.json", job)
        threading.Thread(target=self._watch, args=(job_dir, job, process, started, lock),
                         name=f"job-{request.job_name}", daemon=True).start()

    def _spawn(self, family: str, channels: dict[str, Path], job_dir: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLOPS_OPT_ML"))}
        env.update(
            MLOPS_OPT_ML=str(job_dir), SM_MODEL_DIR=str(job_dir / "model"),
            SM_OUTPUT_DATA_DIR=str(job_dir / "output" / "data"), SM_CHANNELS=json.dumps(sorted(channels)),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(REPOSITORY_ROOT), env.get("PYTHONPATH")) if p),
        )
        for name in channels:
            env[f"SM_CHANNEL_{name.upper()}"] = str(job_dir / "input" / "data" / name)
        limit = self._settings.job_memory_limit_mb * 1024 * 1024
        with open(job_dir / "training.log", "wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", f"training_containers.{family}.train"],
                cwd=REPOSITORY_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                # a C function, not Python code, runs between fork and exec
                preexec_fn=functools.partial(resource.setrlimit, resource.RLIMIT_AS, (limit, limit)),
            )

    def _watch(self, job_dir: Path, job: Job, process: subprocess.Popen[bytes], started: float,
               lock: int) -> None:
        max_runtime_s = job["request"]["compute"]["max_runtime_s"]
        timed_out = False
        try:
            exit_code = process.wait(timeout=max_runtime_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            exit_code = _kill_group(process)
        try:
            ended = time.time()
            status = _final_status(job_dir, exit_code, timed_out, max_runtime_s)
            status.update(exit_code=exit_code, started_at=_iso(started), ended_at=_iso(ended),
                          duration_s=round(ended - started, 3), metrics=parse_metrics(_read_log(job_dir)))
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
            _write_json(job_dir / "status.json", status)
        return status

    def _start_run(self, request: TrainingJobRequest) -> str:
        if self._client is None:
            self._client = open_client(self._settings)
        experiment_id = ensure_experiment(self._client, request.experiment, self._settings)
        tags = {**request.tags, "job_name": request.job_name, "algorithm": request.algorithm,
                "task": request.task}
        run_id = self._client.create_run(experiment_id, run_name=request.job_name, tags=tags).info.run_id
        params = {**request.hyperparameters, "algorithm": request.algorithm, "task": request.task,
                  "target": request.target,
                  **flatten("preprocessing", request.preprocessing.model_dump(mode="json"))}
        self._client.log_batch(run_id, params=[Param(k, _param_text(v)) for k, v in params.items()])
        return run_id


def parse_metrics(log_text: str) -> dict[str, float]:
    """Return the last value of each ``name=value`` line (``METRIC_LINE``) of a training log.

    Args:
        log_text: the log; other lines are ignored.

    Returns:
        metric name -> last printed value (``nan`` and ``inf`` included).
    """
    matches = (METRIC_LINE.match(line.strip()) for line in log_text.splitlines())
    return {m.group(1): float(m.group(2)) for m in matches if m}


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flatten nested mappings to dotted keys: ``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    return {k: v for key, item in value.items() for k, v in flatten(f"{prefix}.{key}", item).items()}


def _channel_folders(channels: dict[str, str]) -> dict[str, Path]:
    if "train" not in channels:
        raise TrainingJobError(f"the train channel is required; got channels {sorted(channels)}")
    folders = {}
    for name, uri in channels.items():
        parsed = urllib.parse.urlparse(uri)
        folder = Path(urllib.parse.unquote(parsed.path))
        if not _CHANNEL_NAME.match(name) or parsed.scheme != "file" or not folder.is_dir():
            raise TrainingJobError(f"channel {name!r} must be a file:// URI of an existing folder, "
                                   f"got {uri!r}")
        folders[name] = folder
    return folders


def _write_inputs(request: TrainingJobRequest, channels: dict[str, Path], job_dir: Path) -> None:
    values = {
        **request.hyperparameters, "_algorithm": request.algorithm, "_task": request.task,
        "_target": request.target, "_preprocessing": request.preprocessing.model_dump(mode="json"),
        "_feature_types": request.feature_types,
        "_seed": int(request.hyperparameters.get("_seed", DEFAULT_SEED)),
    }
    _write_json(job_dir / "input" / "config" / "hyperparameters.json",
                {key: json.dumps(value) for key, value in values.items()})
    for name, folder in channels.items():
        link = job_dir / "input" / "data" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(folder.resolve(), target_is_directory=True)
        except OSError:
            shutil.copytree(folder, link)


def _kill_group(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the job's process group, SIGKILL it after a grace period; return the exit code."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            return process.wait(timeout=_KILL_GRACE_S)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


def _final_status(job_dir: Path, exit_code: int, timed_out: bool, max_runtime_s: int) -> Status:
    if timed_out:
        reason = (f"MaxRuntimeExceeded: the job ran longer than its max_runtime_s of {max_runtime_s} "
                  "seconds and was stopped; raise compute.max_runtime_s or make training cheaper")
        return {"status": "Failed", "secondary_status": "MaxRuntimeExceeded", "failure_reason": reason}
    if exit_code == 0 and (job_dir / "model" / "model.joblib").is_file():
        return {"status": "Completed", "secondary_status": "Completed", "failure_reason": None}
    failure = job_dir / "output" / "failure"
    if failure.is_file() and failure.read_text().strip():
        reason = failure.read_text().strip()
    elif exit_code == 0:
        reason = "the program exited with code 0 but wrote no model/model.joblib"
    else:
        killed = f" (killed by signal {-exit_code})" if exit_code < 0 else ""
        tail = "\n".join(_read_log(job_dir).splitlines()[-_LOG_TAIL_LINES:])
        reason = f"the program exited with code {exit_code}{killed}; last log lines:\n{tail}"
    return {"status": "Failed", "secondary_status": "Failed", "failure_reason": reason[:_REASON_MAX_CHARS]}


def _lost_status(job_dir: Path, job: Job) -> Status:
    reason = (f"the job was lost: its process (pid {job['pid']}) is no longer running and left no "
              "status, e.g. because the server restarted while it ran; start it under a new job name")
    return {"status": "Failed", "secondary_status": "Failed", "failure_reason": reason, "exit_code": None,
            "started_at": job["started_at"], "ended_at": None, "duration_s": None,
            "metrics": parse_metrics(_read_log(job_dir))}


def _to_training_job(job_dir: Path, job: Job, status: Status | None) -> TrainingJob:
    request = job["request"]
    common = {"job_name": request["job_name"], "algorithm": request["algorithm"],
              "log_uri": (job_dir / "training.log").as_uri(), "tracking_run_id": job["run_id"]}
    if status is None:
        return TrainingJob(**common, status="InProgress", secondary_status="Training",
                           started_at=job["started_at"], metrics=parse_metrics(_read_log(job_dir)))
    return TrainingJob(
        **common, status=status["status"], secondary_status=status["secondary_status"],
        failure_reason=status["failure_reason"], metrics=status["metrics"],
        model_uri=(job_dir / "model").as_uri() if status["status"] == "Completed" else None,
        started_at=status["started_at"], ended_at=status["ended_at"], duration_s=status["duration_s"],
    )


def _watched(job_dir: Path) -> bool:
    """Whether a watcher (in any process) still holds the job's lock, i.e. is finishing it."""
    fd = os.open(job_dir / "watcher.lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _process_alive(pid: int, job_dir: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) process of this job, from Linux ``/proc``."""
    proc = Path(f"/proc/{pid}")
    try:
        state = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
        environ = proc.joinpath("environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):  # gone, or a zombie (environ unreadable)
        return False
    except OSError:  # another user's process, or no /proc: assume the pid is still the job's
        return True
    roots = [Path(e[len(b"MLOPS_OPT_ML="):].decode()) for e in environ if e.startswith(b"MLOPS_OPT_ML=")]
    return state != "Z" and any(root.resolve() == job_dir.resolve() for root in roots)


def _read_status(job_dir: Path) -> Status | None:
    path = job_dir / "status.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _read_log(job_dir: Path, max_bytes: int = 1 << 20) -> str:
    """Return the last ``max_bytes`` bytes of the job's log as text ("" when there is none)."""
    path = job_dir / "training.log"
    if not path.is_file():
        return ""
    with open(path, "rb") as log:
        log.seek(max(0, path.stat().st_size - max_bytes))
        return log.read().decode("utf-8", errors="replace")


def _write_json(path: Path, value: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(value, indent=2))
    os.replace(temporary, path)


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
