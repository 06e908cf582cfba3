"""Which local runtimes are alive: one lease file per runtime, held with ``flock`` while it lives.

A runtime (``mlops run``, ``mlops serve``, a test's runtime) takes a lease when it starts:
``{home}/runtimes/{runtime_id}.lock``, locked exclusively for the life of the process, and
``{runtime_id}.json`` saying who it is. The operating system drops the lock when the process
ends, however it ends (``kill -9`` included), so any process can tell a live runtime from a dead
one by trying to lock the file: the state of executions, deliveries and jobs owned by a dead
runtime is then resumed, retaken or adopted instead of being left "running" forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from mcp_server.backends.local.files import write_json_atomic

#: Environment variable naming the lease file of the runtime that owns a job process.
OWNER_ENV = "MLOPS_RUNTIME_LEASE"


def leases_folder(home: Path) -> Path:
    """The folder of runtime leases in a workspace."""
    return home / "runtimes"


@dataclass
class RuntimeLease:
    """A live runtime's lease; release it (or let the process end) to give it up.

    Attributes:
        runtime_id: ``{pid}-{random}``, unique per runtime.
        lock_path: the lock file held while the runtime lives.
    """

    runtime_id: str
    lock_path: Path
    _fd: int | None = None

    @classmethod
    def acquire(cls, home: Path, command: str = "") -> RuntimeLease:
        """Take a new lease in ``home`` for this process.

        Args:
            home: the workspace.
            command: what the runtime serves (``mlops run``, ``mlops serve``), for people.

        Returns:
            The held lease.

        Raises:
            OSError: the workspace cannot be written.
        """
        folder = leases_folder(home)
        folder.mkdir(parents=True, exist_ok=True)
        runtime_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        lock_path = folder / f"{runtime_id}.lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        write_json_atomic(
            folder / f"{runtime_id}.json",
            {"runtime_id": runtime_id, "pid": os.getpid(), "started_at": time.time(), "command": command},
        )
        return cls(runtime_id, lock_path, fd)

    def release(self) -> None:
        """Give the lease up and remove its files (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.lock_path.unlink()
            self.lock_path.with_suffix(".json").unlink()
        os.close(self._fd)
        self._fd = None


def lease_alive(lock_path: Path) -> bool:
    """Whether the runtime holding ``lock_path`` is alive (False when the file is gone)."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def runtime_alive(home: Path, runtime_id: str | None) -> bool:
    """Whether the runtime ``runtime_id`` of workspace ``home`` is alive."""
    if not runtime_id or "/" in runtime_id or runtime_id.startswith("."):
        return False
    return lease_alive(leases_folder(home) / f"{runtime_id}.lock")


def live_runtimes(home: Path) -> list[dict[str, object]]:
    """The live runtimes of a workspace: runtime_id, pid, started_at (Unix seconds), command.

    Leases of dead runtimes found on the way are removed.
    """
    found = []
    for info in sorted(leases_folder(home).glob("*.json")):
        lock = info.with_suffix(".lock")
        if lease_alive(lock):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(info.read_text()))
        else:
            with contextlib.suppress(OSError):
                info.unlink()
                lock.unlink()
    return found
