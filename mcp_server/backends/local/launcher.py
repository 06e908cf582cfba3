"""Start local job programs as processes, warm or cold, under the same contract.

A job is one program (``python -m training_containers...``) in its own process group, with its
environment, working directory, an address-space limit, and stdout/stderr in its log. Started
*cold*, it is a fresh interpreter (``subprocess.Popen``). Started *warm* (the default), it is
forked from a fork server that has already imported the libraries the programs use (the
standard library's ``multiprocessing`` forkserver with a preload list), which saves the
interpreter start and the imports, about 1.3 s per job here: the local counterpart of SageMaker
warm pools. The program then runs with ``runpy`` as ``__main__``, exactly as ``-m`` would run it.
The fork server imports modules but never computes, so forking it is safe for OpenMP-based
libraries. Set ``MLOPS_WARM_JOBS=0`` to start every job cold.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import runpy
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import training_containers
from mcp_server.backends.local.files import write_text_atomic
from mcp_server.backends.local.job_watchdog import OWNER_FILE_ENV
from mcp_server.backends.local.runtimes import OWNER_ENV

#: Modules the job programs import: the fork server loads them once, and every job starts with them.
PRELOAD = [
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "joblib",
    "scipy.stats",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.feature_selection",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "xgboost",
    "matplotlib",
    "matplotlib.pyplot",
    "sklearn.metrics._plot.confusion_matrix",
    "sklearn.cluster",
    "sklearn.decomposition",
    "sklearn.datasets",
    "duckdb",
    "sklearn.manifold",
    # The programs' shared modules: a change to them needs a server restart to reach warm jobs.
    "training_containers.common.program",
    "training_containers.common.preprocessing",
    "training_containers.evaluation.processing",
    "training_containers.evaluation.supervised",
    "training_containers.evaluation.scoring",
    "training_containers.evaluation.learning",
    "training_containers.evaluation.plots",
    "training_containers.evaluation.baseline",
    "training_containers.sklearn.unsupervised",
    "training_containers.evaluation.clustering",
    "training_containers.evaluation.embedding",
    "training_containers.preparation.engine",
]

#: The folder holding the ``training_containers`` package: every job's working directory.
REPOSITORY_ROOT = Path(training_containers.__file__).resolve().parent.parent
#: Variables of the job contracts: a job gets its own, never the server's.
CONTRACT_PREFIXES = ("SM_", "MLOPS_OPT_ML", "MLOPS_PROCESSING_ROOT")

_lock = threading.Lock()
_context: Any = None


class JobProcess(Protocol):
    """What the backends use of a started job: its pid, and waiting for its exit code."""

    pid: int

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code (negative: killed by that signal).

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
        """
        ...


class ForkedJob:
    """A job forked from the warm fork server (a ``multiprocessing.Process``)."""

    def __init__(self, process: Any, argv: list[str]) -> None:
        """Wrap a started process."""
        self._process = process
        self._argv = argv
        self.pid: int = process.pid

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code, like ``subprocess.Popen.wait``.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
        """
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self._argv, timeout or 0)
        return int(self._process.exitcode)


def _run_forked(module: str, env: dict[str, str], cwd: str, log_path: str, limit_bytes: int) -> None:
    """Child side of a warm job: become the job, then run its module as ``__main__``.

    The watchdog thread starts before the memory limit applies: under the limit, starting a
    thread can fail, or hang in ``Thread.start`` when the new thread's bootstrap runs out of
    memory, which left such jobs running until their time limit.
    """
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.path.insert(0, cwd)
    sys.argv = [module]
    from mcp_server.backends.local.job_watchdog import limit_memory, start_watchdog

    start_watchdog()
    limit_memory(limit_bytes)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


@contextlib.contextmanager
def _entry_script_hidden() -> Iterator[None]:
    """Start a forked job without it running the server's entry script again.

    ``multiprocessing`` hands every child the parent's ``__main__`` (its ``__spec__`` name or
    its ``__file__``, ``spawn.get_preparation_data``), and the child imports it before the
    target runs; with the ``mlops`` console script that imports the whole CLI (MLflow
    included), about 1.7 s per job. The fork server's own ``"__main__"`` preload does not help
    on Python 3.11: it reads a ``main_path`` key that ``get_preparation_data`` no longer
    writes. The job's target lives in this module, so the child needs nothing from
    ``__main__``: both attributes are hidden while the process starts (under the module lock).
    """
    main = sys.modules["__main__"]
    missing = object()
    with _lock:
        saved = {name: main.__dict__.pop(name, missing) for name in ("__spec__", "__file__")}
        main.__spec__ = None
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is missing:
                    main.__dict__.pop(name, None)
                else:
                    main.__dict__[name] = value


def _forkserver() -> Any:
    global _context
    with _lock:
        if _context is None:
            os.environ.setdefault("MPLBACKEND", "Agg")  # the fork server imports pyplot headless
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
        return _context


def warm_up() -> None:
    """Start the fork server now (it imports ``PRELOAD``), so the first job does not wait for it."""
    if warm_jobs_enabled():
        context = _forkserver()
        process = context.Process(target=os.getpid)
        process.start()
        process.join()


def warm_jobs_enabled() -> bool:
    """Whether jobs start warm (``MLOPS_WARM_JOBS`` unset or not ``0``/``false``)."""
    return os.environ.get("MLOPS_WARM_JOBS", "1").lower() not in ("0", "false", "no")


def job_environment(variables: dict[str, str]) -> dict[str, str]:
    """A job's whole environment: the server's, less its contract variables, plus ``variables``.

    Output is unbuffered (log lines appear as printed) and the repository root is on
    ``PYTHONPATH`` so ``training_containers`` imports.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONTRACT_PREFIXES)}
    path = os.pathsep.join(p for p in (str(REPOSITORY_ROOT), env.get("PYTHONPATH")) if p)
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=path)
    env.update(variables)
    return env


def launch(
    module: str,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    memory_limit_mb: int,
    owner_file: Path | None = None,
) -> JobProcess:
    """Start ``python -m module`` as a job in its own process group.

    Args:
        module: the program's module, e.g. ``training_containers.xgboost.train``.
        env: the job's whole environment.
        cwd: its working directory (the repository root, so the package imports).
        log_path: where its stdout and stderr go (truncated first).
        memory_limit_mb: its address-space limit, MiB.
        owner_file: where the job reads which runtime owns it (``job_watchdog``); written here
            with this process's runtime lease (``MLOPS_RUNTIME_LEASE``) when it has one. A job
            whose owner is gone for the grace period ends itself.

    Returns:
        The started job.

    Raises:
        OSError: the process could not be started.
    """
    lease = os.environ.get(OWNER_ENV)
    if owner_file is not None and lease:
        write_text_atomic(owner_file, lease)
        env = {**env, OWNER_FILE_ENV: str(owner_file)}
    limit = memory_limit_mb * 1024 * 1024
    if warm_jobs_enabled():
        process = _forkserver().Process(
            target=_run_forked, args=(module, env, str(cwd), str(log_path), limit), name=module
        )
        with _entry_script_hidden():
            process.start()
        _wait_for_own_group(process.pid)
        return ForkedJob(process, [module])
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "mcp_server.backends.local.job_watchdog", module, str(limit)],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_own_group(pid: int, timeout_s: float = 10.0) -> None:
    """Wait until a forked job leads its own process group (its first step), or has ended.

    Stopping a job signals its group (``os.killpg(pid)``); before the child's ``setsid`` there
    is no such group, and a stop right after the start would miss the job.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.getpgid(pid) == pid:
                return
        except ProcessLookupError:
            return
        time.sleep(0.001)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22).

    Stored with a job, it tells the job's process from a later process that reused its pid.
    Returns None when the process does not exist (or there is no ``/proc``).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[19])
