"""A local processing job: one program under the SageMaker Processing contract, in a folder.

The job folder plays the role of ``/opt/ml/processing`` (``MLOPS_PROCESSING_ROOT``):

- ``input/<name>``: links to the job's inputs (copies where links cannot be made);
- ``input/config/<file>``: its configuration;
- ``output/``: what the program writes, or ``output/failure`` (``"Type: message"``, then the
  traceback's tail) when it fails;
- ``<log>`` (stdout and stderr), ``process.json`` (pid) and ``status.json`` (exit code,
  ``timed_out``, ``started_at``, ``ended_at``, ``duration_s`` in seconds).

The program runs as ``python -m <program>`` in its own process group (``launcher.launch``), with
an address-space limit of ``settings.job_memory_limit_mb`` MiB and an optional time limit, and
the call waits for it. The evaluation and the data preparation are such jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from mcp_server.backends.local.files import write_json_atomic
from mcp_server.backends.local.job_folder import iso, kill_group, log_tail, process_alive
from mcp_server.backends.local.launcher import REPOSITORY_ROOT, job_environment, launch, start_ticks
from mcp_server.settings import Settings

#: Characters of a failure reason kept in messages.
REASON_MAX_CHARS = 2048
#: Failure texts of a process that ran into its address-space limit (RLIMIT_AS).
MEMORY_SIGNS = ("MemoryError", "failed to map segment", "Cannot allocate memory", "bad_alloc", "libllvmlite")


def run_processing_job(
    job_dir: Path,
    program: str,
    inputs: dict[str, Path],
    config: tuple[str, dict[str, Any]],
    settings: Settings,
    log_name: str,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Prepare the job folder, run the program to its end, and return its ``status.json``.

    What an earlier, unfinished attempt left is stopped (its process group) and removed first:
    a processing job is recomputed from its inputs, never adopted.

    Args:
        job_dir: the job's folder (created).
        program: the module to run, e.g. ``training_containers.evaluation.evaluate``.
        inputs: input name (``model``, ``data``, ...) -> the folder or file to mount as ``input/<name>``.
        config: the configuration's file name under ``input/config/`` and its JSON content.
        settings: the jobs' memory limit.
        log_name: the log's file name in ``job_dir``.
        timeout_s: seconds after which the job is stopped (None: no limit).

    Returns:
        ``{"exit_code", "timed_out", "started_at", "ended_at", "duration_s"}``.
    """
    stop_orphan(job_dir)
    for name in ("input", "output"):
        if (job_dir / name).exists():
            shutil.rmtree(job_dir / name)  # links are removed, never followed
    (job_dir / log_name).unlink(missing_ok=True)
    (job_dir / "status.json").unlink(missing_ok=True)
    _mount(inputs, job_dir / "input")
    write_json_atomic(job_dir / "input" / "config" / config[0], config[1])
    started = time.time()
    env = job_environment({"MLOPS_PROCESSING_ROOT": str(job_dir), "MPLBACKEND": "Agg"})
    limit = settings.job_memory_limit_mb
    process = launch(program, env, REPOSITORY_ROOT, job_dir / log_name, limit, owner_file=job_dir / "owner")
    write_json_atomic(job_dir / "process.json", {"pid": process.pid, "start_ticks": start_ticks(process.pid)})
    timed_out = False
    try:
        exit_code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        exit_code = kill_group(process)
    ended = time.time()
    status = {
        "exit_code": exit_code,
        "timed_out": timed_out,
        "started_at": iso(started),
        "ended_at": iso(ended),
        "duration_s": round(ended - started, 3),
    }
    write_json_atomic(job_dir / "status.json", status)
    return status


def failure_reason(job_dir: Path, exit_code: int, log_name: str, memory_limit_mb: int, what: str) -> str:
    """Why a job that wrote no result failed: its failure file's headline, else the log's tail.

    A failure that looks like the address-space limit (``MEMORY_SIGNS``) says so and names
    ``MLOPS_JOB_MEMORY_LIMIT_MB``.

    Args:
        job_dir: the job's folder.
        exit_code: the process's exit code (negative: killed by that signal).
        log_name: the log's file name in ``job_dir``.
        memory_limit_mb: the job's address-space limit, MiB.
        what: the result the program should have written (``report``), for the message.

    Returns:
        At most ``REASON_MAX_CHARS`` characters.
    """
    failure = job_dir / "output" / "failure"
    text = failure.read_text(errors="replace").strip() if failure.is_file() else ""
    if text:
        reason = text.split("\n\n", 1)[0]  # the headline "ExceptionType: message"
    else:
        killed = f" (killed by signal {-exit_code})" if exit_code < 0 else ""
        reason = (
            f"the program exited with code {exit_code}{killed} and wrote no {what}; "
            f"last log lines:\n{log_tail(job_dir / log_name)}"
        )
    if any(sign in reason for sign in MEMORY_SIGNS):
        reason += (
            f"; the job's address space is limited to {memory_limit_mb} MiB: raise MLOPS_JOB_MEMORY_LIMIT_MB"
        )
    return reason[:REASON_MAX_CHARS]


def stop_orphan(job_dir: Path) -> None:
    """Stop the job's earlier process if it still runs (its runtime died mid-job).

    Two processes must not write one output folder.
    """
    path = job_dir / "process.json"
    if not path.is_file():
        return
    try:
        earlier = json.loads(path.read_text())
        if process_alive(int(earlier["pid"]), job_dir, earlier.get("start_ticks")):
            os.killpg(int(earlier["pid"]), signal.SIGKILL)
    except (OSError, ValueError, KeyError):
        return


def _mount(inputs: dict[str, Path], input_dir: Path) -> None:
    """Link each input as ``input_dir/<name>``; copy it where links are not possible."""
    input_dir.mkdir(parents=True, exist_ok=True)
    for name, source in inputs.items():
        link = input_dir / name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(source.resolve(), target_is_directory=source.is_dir())
        except OSError:
            if source.is_dir():
                shutil.copytree(source, link)
            else:
                shutil.copy2(source, link)
