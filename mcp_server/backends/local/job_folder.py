"""A local training job's folder: its inputs, its status files, its process and its log.

The folder (``settings.home/jobs/<job_name>/``) plays the role of ``/opt/ml``. ``job.json`` holds
the request, the process id and the tracking run; ``status.json`` is written atomically when the
job ends; ``watcher.lock`` is held by the thread that watches the process until ``status.json``
exists, so any process can tell a job being finished from a job whose watcher died.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_server.backends.local.files import write_json_atomic
from mcp_server.core.jobs.requests import container_hyperparameters, encode_hyperparameters
from mcp_server.core.models import TrainingJob, TrainingJobRequest
from mcp_server.errors import TrainingJobError

#: A metric line the programs print, e.g. ``validation_f1=0.97`` (names may hold digits: r2).
METRIC_LINE = re.compile(r"^([a-z][a-z0-9_]*)=([-+0-9.eE]+|[-+]?nan|[-+]?inf)$")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_KILL_GRACE_S = 5.0
_LOG_TAIL_LINES = 20
_REASON_MAX_CHARS = 2048

Job = dict[str, Any]  # the content of job.json
Status = dict[str, Any]  # the content of status.json


def parse_metrics(log_text: str) -> dict[str, float]:
    """Return the last value of each ``name=value`` line (``METRIC_LINE``) of a training log.

    Args:
        log_text: the log; other lines are ignored.

    Returns:
        metric name -> last printed value (``nan`` and ``inf`` included).
    """
    matches = (METRIC_LINE.match(line.strip()) for line in log_text.splitlines())
    return {m.group(1): float(m.group(2)) for m in matches if m}


def channel_folders(channels: dict[str, str], task: str = "classification") -> dict[str, Path]:
    """Resolve channel URIs to local folders.

    Args:
        channels: channel name -> ``file://`` URI.
        task: the job's task; control tasks (reinforcement learning) take no channels.

    Raises:
        TrainingJobError: no ``train`` channel (or any channel for a control task), a bad
            channel name, or a URI that is not ``file://`` of an existing folder.
    """
    if task == "control":
        if channels:
            raise TrainingJobError(
                f"control tasks train in their environment and take no channels; got {sorted(channels)}"
            )
        return {}
    if "train" not in channels:
        raise TrainingJobError(f"the train channel is required; got channels {sorted(channels)}")
    folders = {}
    for name, uri in channels.items():
        parsed = urllib.parse.urlparse(uri)
        folder = Path(urllib.parse.unquote(parsed.path))
        if not _CHANNEL_NAME.match(name) or parsed.scheme != "file" or not folder.is_dir():
            raise TrainingJobError(
                f"channel {name!r} must be a file:// URI of an existing folder, got {uri!r}"
            )
        folders[name] = folder
    return folders


def write_inputs(request: TrainingJobRequest, channels: dict[str, Path], job_dir: Path) -> None:
    """Write ``input/config/hyperparameters.json`` and link each channel under ``input/data/``."""
    write_json_atomic(
        job_dir / "input" / "config" / "hyperparameters.json",
        encode_hyperparameters(container_hyperparameters(request)),
    )
    for name, folder in channels.items():
        link = job_dir / "input" / "data" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(folder.resolve(), target_is_directory=True)
        except OSError:
            shutil.copytree(folder, link)


def kill_group(process: Any) -> int:
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


def final_status(job_dir: Path, exit_code: int, timed_out: bool, max_runtime_s: int) -> Status:
    """The status of an ended job: Completed, or Failed with the reason (failure file, else log tail).

    A job completed when it exited with 0 and wrote ``model/metadata.json``, which every training
    program writes last, beside ``model.joblib`` or a reinforcement-learning policy.
    """
    if timed_out:
        reason = (
            f"MaxRuntimeExceeded: the job ran longer than its max_runtime_s of {max_runtime_s} "
            "seconds and was stopped; raise compute.max_runtime_s or make training cheaper"
        )
        return {"status": "Failed", "secondary_status": "MaxRuntimeExceeded", "failure_reason": reason}
    if exit_code == 0 and (job_dir / "model" / "metadata.json").is_file():
        return {"status": "Completed", "secondary_status": "Completed", "failure_reason": None}
    failure = job_dir / "output" / "failure"
    if failure.is_file() and failure.read_text().strip():
        reason = failure.read_text().strip()
    elif exit_code == 0:
        reason = "the program exited with code 0 but wrote no model (model/metadata.json is missing)"
    else:
        killed = f" (killed by signal {-exit_code})" if exit_code < 0 else ""
        tail = log_tail(job_dir / "training.log")
        reason = f"the program exited with code {exit_code}{killed}; last log lines:\n{tail}"
    return {"status": "Failed", "secondary_status": "Failed", "failure_reason": reason[:_REASON_MAX_CHARS]}


def ended_status(job_dir: Path, job: Job) -> Status:
    """The status of a job whose process ended while no watcher waited for it (its runtime died).

    Its exit code is unknown; its folder tells: the model it wrote (``model/metadata.json``, which
    every program writes last) means Completed, else its failure file or its log's last lines.
    """
    completed = (job_dir / "model" / "metadata.json").is_file()
    failure = job_dir / "output" / "failure"
    if completed:
        found: Status = {"status": "Completed", "secondary_status": "Completed", "failure_reason": None}
    elif failure.is_file() and failure.read_text().strip():
        reason = failure.read_text().strip()[:_REASON_MAX_CHARS]
        found = {"status": "Failed", "secondary_status": "Failed", "failure_reason": reason}
    else:
        reason = (
            f"the job's process (pid {job['pid']}) ended while its runtime was stopped and left no "
            f"model and no failure file; last log lines:\n{log_tail(job_dir / 'training.log')}"
        )
        found = {
            "status": "Failed",
            "secondary_status": "Failed",
            "failure_reason": reason[:_REASON_MAX_CHARS],
        }
    return {
        **found,
        "exit_code": None,
        "started_at": job["started_at"],
        "ended_at": iso(time.time()),
        "duration_s": None,
        "metrics": parse_metrics(read_log(job_dir / "training.log")),
    }


#: What a local job does not do that ``compute:`` asked for.
SPOT_NOTE = (
    "compute.use_spot does not apply locally: the job ran as a process on this machine; spot "
    "capacity (and its checkpoints on S3) is a SageMaker feature, used in AWS mode"
)


def local_notes(request: dict[str, Any]) -> list[str]:
    """What the job's request asked for that a local job cannot do (``use_spot``)."""
    return [SPOT_NOTE] if (request.get("compute") or {}).get("use_spot") else []


def to_training_job(job_dir: Path, job: Job, status: Status | None) -> TrainingJob:
    """Describe the job from ``job.json`` and ``status.json`` (None while it runs)."""
    request = job["request"]
    common = {
        "job_name": request["job_name"],
        "algorithm": request["algorithm"],
        "log_uri": (job_dir / "training.log").as_uri(),
        "tracking_run_id": job["run_id"],
        "notes": local_notes(request),
    }
    if status is None:
        return TrainingJob(
            **common,
            status="InProgress",
            secondary_status="Training",
            started_at=job["started_at"],
            metrics=parse_metrics(read_log(job_dir / "training.log")),
        )
    return TrainingJob(
        **common,
        status=status["status"],
        secondary_status=status["secondary_status"],
        failure_reason=status["failure_reason"],
        metrics=status["metrics"],
        model_uri=(job_dir / "model").as_uri() if status["status"] == "Completed" else None,
        started_at=status["started_at"],
        ended_at=status["ended_at"],
        duration_s=status["duration_s"],
    )


def watched(job_dir: Path) -> bool:
    """Whether a watcher (in any process) still holds the job's lock, i.e. is finishing it."""
    fd = os.open(job_dir / "watcher.lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def process_alive(pid: int, job_dir: Path, ticks: int | None = None) -> bool:
    """Whether ``pid`` is a live (not zombie) process of this job, from Linux ``/proc``.

    With ``ticks`` (the job's start time recorded at launch) the process must have started then,
    so a later process reusing the pid is not taken for the job; without it, the process's
    environment must point at this job folder (``MLOPS_OPT_ML``).
    """
    proc = Path(f"/proc/{pid}")
    try:
        fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        state = fields[0]
        if ticks is not None:
            return state != "Z" and int(fields[19]) == ticks
        environ = proc.joinpath("environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):  # gone, or a zombie (environ unreadable)
        return False
    except OSError:  # another user's process, or no /proc: assume the pid is still the job's
        return True
    roots = [Path(e[len(b"MLOPS_OPT_ML=") :].decode()) for e in environ if e.startswith(b"MLOPS_OPT_ML=")]
    return state != "Z" and any(root.resolve() == job_dir.resolve() for root in roots)


def read_status(job_dir: Path) -> Status | None:
    """Return ``status.json``, or None while the job has not ended."""
    path = job_dir / "status.json"
    return json.loads(path.read_text()) if path.is_file() else None


def read_log(path: Path, max_bytes: int = 1 << 20) -> str:
    """Return the last ``max_bytes`` bytes of a job's log as text ("" when there is none)."""
    if not path.is_file():
        return ""
    with open(path, "rb") as log:
        log.seek(max(0, path.stat().st_size - max_bytes))
        return log.read().decode("utf-8", errors="replace")


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a job's log ("" when there is none)."""
    return "\n".join(read_log(path, max_bytes=65536).splitlines()[-lines:])


def iso(timestamp: float) -> str:
    """Format a Unix timestamp (seconds) as ISO-8601 UTC with a ``Z`` suffix."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
