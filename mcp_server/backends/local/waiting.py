"""Runs waiting for an operator, kept as JSON files in the workspace (``{home}/waiting/``).

One file per run (``{run_id}.json``) holding its task token and the workflow state it waits
in; writes are atomic and serialised by one lock, so a restarted server finds every waiting run.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from mcp_server.backends.base import WaitingRunStore
from mcp_server.backends.local.files import exclusive, write_json_atomic
from mcp_server.core.models import WaitingRun
from mcp_server.errors import MlopsError, NotFoundError
from mcp_server.settings import Settings


class LocalWaitingRunStore(WaitingRunStore):
    """Waiting runs under ``settings.home / "waiting"``."""

    def __init__(self, settings: Settings) -> None:
        """Point the store at the workspace; the folder is created on first write."""
        self._folder = settings.home / "waiting"

    def save(self, run: WaitingRun) -> WaitingRun:
        """Store (or replace) the run's file atomically.

        Raises:
            MlopsError: the workspace is not writable.
        """
        try:
            with exclusive(self._folder / ".lock"):
                write_json_atomic(self._path(run.run_id), run.model_dump(mode="json"))
        except OSError as err:
            raise MlopsError(f"cannot store waiting run {run.run_id} in {self._folder}: {err}") from err
        return run

    def get(self, run_id: str) -> WaitingRun:
        """Return the waiting run.

        Raises:
            NotFoundError: no run of that id is waiting.
        """
        path = self._path(run_id)
        if not path.is_file():
            raise NotFoundError(f"no run {run_id!r} is waiting for an operator")
        return self._read(path)

    def list(self, issue_number: int | None = None) -> list[WaitingRun]:
        """Return the waiting runs (of one issue when given), oldest first."""
        if not self._folder.is_dir():
            return []
        runs = [self._read(path) for path in self._folder.glob("*.json")]
        runs = [r for r in runs if issue_number is None or r.issue_number == issue_number]
        return sorted(runs, key=lambda r: r.waiting_since)

    def remove(self, run_id: str) -> bool:
        """Forget a waiting run; True when it was there."""
        with exclusive(self._folder / ".lock"):
            path = self._path(run_id)
            if not path.exists():
                return False
            path.unlink()
            return True

    def _path(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise NotFoundError(f"invalid run id {run_id!r}")
        return self._folder / f"{run_id}.json"

    @staticmethod
    def _read(path: Path) -> WaitingRun:
        try:
            return WaitingRun.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError, ValidationError) as err:
            raise MlopsError(f"cannot read waiting run {path}: {err}") from err
