"""Inside a local job: end the job when its runtime died and no runtime adopted it.

A job (training, tuning trial, evaluation) outlives a runtime that dies (``kill -9``), so that
the next runtime can adopt it instead of training again. It must not live on for ever: the
job's folder holds ``owner``, the path of the lease of the runtime that watches it
(``runtimes.RuntimeLease``), which adoption rewrites. This watchdog, a daemon thread in the job,
checks that lease every second; when nobody has held it for ``MLOPS_ORPHAN_GRACE_S`` seconds
(default 300), it writes why to the job's log and kills the job's process group.

``python -m mcp_server.backends.local.job_watchdog MODULE LIMIT_BYTES`` runs MODULE as
``__main__`` with the watchdog, under the memory limit (how a job starts cold); warm jobs start
the watchdog in the forked child. The watchdog always starts before the limit applies.
"""

from __future__ import annotations

import os
import resource
import runpy
import signal
import sys
import threading
import time
from pathlib import Path

from mcp_server.backends.local.runtimes import lease_alive

#: Names the file holding the owning runtime's lease path (set in a job's environment).
OWNER_FILE_ENV = "MLOPS_JOB_OWNER_FILE"
#: Seconds a job lives on without a live owner before it ends itself.
GRACE_ENV = "MLOPS_ORPHAN_GRACE_S"
DEFAULT_GRACE_S = 300.0


def owner_alive(owner_file: Path) -> bool:
    """Whether the runtime named in ``owner_file`` holds its lease (False when unreadable)."""
    try:
        lease = owner_file.read_text().strip()
    except OSError:
        return False
    return bool(lease) and lease_alive(Path(lease))


def watch(owner_file: Path, grace_s: float, interval_s: float = 1.0) -> None:
    """Kill this process group once ``owner_file``'s runtime has been gone for ``grace_s`` seconds."""
    gone_since: float | None = None
    while True:
        time.sleep(interval_s)
        if owner_alive(owner_file):
            gone_since = None
            continue
        now = time.monotonic()
        gone_since = gone_since if gone_since is not None else now
        if now - gone_since >= grace_s:
            sys.stderr.write(
                f"orphaned: the runtime that started this job stopped and none adopted it within "
                f"{grace_s:.0f} s ({GRACE_ENV}); the job ends itself\n"
            )
            sys.stderr.flush()
            os.killpg(os.getpgrp(), signal.SIGKILL)


def start_watchdog() -> threading.Thread | None:
    """Start the watchdog thread when the job has an owner file (``MLOPS_JOB_OWNER_FILE``).

    Returns:
        The thread, or None for a job started without an owning runtime (a direct backend call).
    """
    owner = os.environ.get(OWNER_FILE_ENV)
    if not owner:
        return None
    grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S))
    thread = threading.Thread(target=watch, args=(Path(owner), grace), name="job-watchdog", daemon=True)
    thread.start()
    return thread


def limit_memory(limit_bytes: int) -> None:
    """Cap this process's address space at ``limit_bytes`` (``RLIMIT_AS``, soft and hard).

    Call it after ``start_watchdog``: a thread started under a tight limit can fail to start,
    or leave ``Thread.start`` waiting for ever when its bootstrap runs out of memory.
    """
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def main() -> None:
    """Run a job cold (``job_watchdog MODULE LIMIT_BYTES``).

    Starts the watchdog, applies the memory limit, then runs MODULE as ``__main__`` with no
    arguments.
    """
    module, limit_bytes = sys.argv[1], int(sys.argv[2])
    sys.argv = [module]
    start_watchdog()
    limit_memory(limit_bytes)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
