"""Webhook deliveries kept as JSON files in the workspace (``{home}/deliveries/``).

One file per delivery, named by the SHA-256 of its id (ids come from the network). ``claim``
creates the file with its whole content in one step (a hard link of a written temporary file,
which fails when the name exists), so two processes receiving the same id cannot both claim it
and a crash never leaves half a delivery. Status changes are atomic rewrites under one lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from mcp_server.backends.base import DeliveryStore
from mcp_server.backends.local.files import exclusive, write_json_atomic
from mcp_server.backends.local.runtimes import runtime_alive
from mcp_server.core.models import Delivery
from mcp_server.errors import MlopsError, NotFoundError
from mcp_server.settings import Settings


class LocalDeliveryStore(DeliveryStore):
    """Deliveries under ``settings.home / "deliveries"``."""

    def __init__(self, settings: Settings) -> None:
        """Point the store at the workspace; the folder is created on first write."""
        self._home = settings.home
        self._folder = settings.home / "deliveries"

    def claim(self, delivery: Delivery) -> bool:
        """Store a new delivery; False when its id was claimed before (a redelivery).

        Raises:
            MlopsError: the workspace is not writable.
        """
        path = self._path(delivery.delivery_id)
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self._folder, prefix=".claim-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(delivery.model_dump_json())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(temporary, path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
        except FileExistsError:
            return False
        except OSError as err:
            raise MlopsError(
                f"cannot store delivery {delivery.delivery_id!r} in {self._folder}: {err}"
            ) from err
        return True

    def take(self, delivery_id: str, runtime_id: str) -> Delivery | None:
        """Mark a received delivery (or one held by a dead runtime) as processed by ``runtime_id``."""
        with exclusive(self._folder / ".lock"):
            try:
                delivery = self.get(delivery_id)
            except NotFoundError:
                return None
            held = delivery.status == "processing" and runtime_alive(self._home, delivery.runtime_id)
            if delivery.status == "done" or held:
                return None
            taken = delivery.model_copy(update={"status": "processing", "runtime_id": runtime_id})
            write_json_atomic(self._path(delivery_id), taken.model_dump(mode="json"))
            return taken

    def release(self, delivery_id: str, outcome: dict[str, object]) -> Delivery:
        """Give a taken delivery back (status ``received``) for a later try, counting the try.

        Raises:
            NotFoundError: no delivery has that id.
        """
        with exclusive(self._folder / ".lock"):
            delivery = self.get(delivery_id)
            released = delivery.model_copy(
                update={
                    "status": "received",
                    "runtime_id": None,
                    "outcome": outcome,
                    "attempts": delivery.attempts + 1,
                }
            )
            write_json_atomic(self._path(delivery_id), released.model_dump(mode="json"))
            return released

    def finish(self, delivery_id: str, outcome: dict[str, object]) -> Delivery:
        """Record the outcome (status ``done``).

        Raises:
            NotFoundError: no delivery has that id.
        """
        with exclusive(self._folder / ".lock"):
            delivery = self.get(delivery_id)
            done = delivery.model_copy(
                update={"status": "done", "outcome": outcome, "attempts": delivery.attempts + 1}
            )
            write_json_atomic(self._path(delivery_id), done.model_dump(mode="json"))
            return done

    def get(self, delivery_id: str) -> Delivery:
        """Return the delivery.

        Raises:
            NotFoundError: no delivery has that id.
            MlopsError: its file cannot be read.
        """
        path = self._path(delivery_id)
        try:
            return Delivery.model_validate(json.loads(path.read_text()))
        except FileNotFoundError as err:
            raise NotFoundError(f"no delivery {delivery_id!r} was received") from err
        except (OSError, ValueError, ValidationError) as err:
            raise MlopsError(f"cannot read delivery {path}: {err}") from err

    def pending(self) -> list[str]:
        """Ids of deliveries received and not done, not held by a live runtime, oldest first."""
        if not self._folder.is_dir():
            return []
        waiting = []
        for path in self._folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, ValidationError):
                delivery = Delivery.model_validate(json.loads(path.read_text()))
                if delivery.status == "received" or (
                    delivery.status == "processing" and not runtime_alive(self._home, delivery.runtime_id)
                ):
                    waiting.append(delivery)
        return [d.delivery_id for d in sorted(waiting, key=lambda d: d.received_at)]

    def _path(self, delivery_id: str) -> Path:
        return self._folder / f"{hashlib.sha256(delivery_id.encode()).hexdigest()[:32]}.json"
