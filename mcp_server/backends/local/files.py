"""File primitives the local backends share: exclusive locks and atomic writes.

Locks come from ``filelock`` (an ``flock`` on a separate ``.lock`` file): they exclude other
threads and other processes alike, and the OS releases them if the holder dies. Writes go to a
temporary file in the same folder and land with ``os.replace``, so a reader sees the old
content or the new one, never half of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock


def exclusive(lock_path: Path) -> FileLock:
    """Return an exclusive lock on ``lock_path`` (created if needed), for a ``with`` block.

    Args:
        lock_path: the lock file; never the data file itself (the lock file is truncated).

    Raises:
        OSError: on entering the block, when the lock file cannot be created.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace the content of ``path`` with ``text`` (UTF-8, Unix line ends) atomically.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (non-JSON values as ``str``).

    Raises:
        OSError: the folder cannot be created or written.
    """
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
