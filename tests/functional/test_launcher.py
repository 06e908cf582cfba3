"""Job processes, warm (forked from the preloaded fork server) and cold (a fresh interpreter)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_server.backends.local import launcher
from mcp_server.backends.local.job_folder import kill_group, process_alive
from mcp_server.backends.local.runtimes import OWNER_ENV
from tests.conftest import REPO_ROOT

PROGRAM = "tests.functional.job_program"


@pytest.fixture(params=["warm", "cold"])
def mode(request, monkeypatch):
    monkeypatch.setenv("MLOPS_WARM_JOBS", "1" if request.param == "warm" else "0")
    return request.param


def start(
    tmp_path: Path, behaviour: str, memory_mb: int = 8192, owner_file: Path | None = None
) -> launcher.JobProcess:
    env = {"PATH": os.environ["PATH"], "JOB_BEHAVIOUR": behaviour, "JOB_OUT": str(tmp_path / "out.txt")}
    return launcher.launch(PROGRAM, env, REPO_ROOT, tmp_path / "job.log", memory_mb, owner_file)


def test_a_job_gets_its_environment_folder_and_log(tmp_path, mode):
    job = start(tmp_path, "report")
    assert job.wait(60) == 0
    out = (tmp_path / "out.txt").read_text().splitlines()
    assert out[0] == "report"  # its own environment, not the server's
    assert Path(out[1]) == REPO_ROOT  # its working directory
    assert out[2] == str(job.pid)  # its own process group (killpg reaches it)
    assert "printed to stdout" in (tmp_path / "job.log").read_text()
    assert "printed to stderr" in (tmp_path / "job.log").read_text()


def test_a_warm_job_does_not_run_the_servers_entry_script_again(tmp_path):
    runs = tmp_path / "runs.txt"
    env = {**os.environ, "MLOPS_WARM_JOBS": "1", "ENTRY_RUNS": str(runs), "REPO_ROOT": str(REPO_ROOT)}
    script = Path(__file__).with_name("entry_script.py")
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "job" / "out.txt").read_text().startswith("report")  # the job ran
    assert len(runs.read_text().splitlines()) == 1  # only the server itself ran the script


def test_a_failing_job_exits_non_zero_with_its_traceback_in_the_log(tmp_path, mode):
    job = start(tmp_path, "fail")
    assert job.wait(60) == 1
    assert "ValueError: the job failed on purpose" in (tmp_path / "job.log").read_text()


def test_a_running_job_can_be_stopped_by_its_process_group(tmp_path, mode):
    job = start(tmp_path, "sleep")
    with pytest.raises(subprocess.TimeoutExpired):
        job.wait(0.5)
    assert process_alive(job.pid, tmp_path, launcher.start_ticks(job.pid))
    assert kill_group(job) == -signal.SIGTERM


def test_a_job_stopped_at_once_is_stopped(tmp_path, mode):
    """The job leads its process group when launch returns, so a stop right away reaches it."""
    job = start(tmp_path, "sleep")
    assert os.getpgid(job.pid) == job.pid
    assert kill_group(job) == -signal.SIGTERM


def test_the_memory_limit_applies(tmp_path, mode):
    job = start(tmp_path, "allocate", memory_mb=1024)
    assert job.wait(60) == 1
    assert "MemoryError" in (tmp_path / "job.log").read_text()


def test_the_memory_limit_applies_to_a_job_with_a_watchdog(tmp_path, mode, monkeypatch):
    """The owner's watchdog thread starts before the limit.

    Under the limit, starting a thread can fail (``can't start new thread``) or hang in
    ``Thread.start`` until the job's time limit.
    """
    monkeypatch.setenv(OWNER_ENV, str(tmp_path / "runtime.lease"))
    job = start(tmp_path, "allocate", memory_mb=512, owner_file=tmp_path / "owner")
    assert job.wait(60) == 1
    log = (tmp_path / "job.log").read_text()
    assert "MemoryError" in log and "new thread" not in log and "thread started by" not in log
    assert "16" not in log.splitlines()  # the allocation did not succeed


def test_a_reused_pid_is_not_taken_for_the_job(tmp_path):
    ticks = launcher.start_ticks(os.getpid())
    assert ticks is not None
    assert process_alive(os.getpid(), tmp_path, ticks)
    assert not process_alive(os.getpid(), tmp_path, ticks + 1)
    assert launcher.start_ticks(2**22 + 12345) is None
