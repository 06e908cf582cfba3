"""The local notification backend: one JSON line per notification in the workspace.

``{home}/notifications.jsonl`` plays the role of the SNS topic. Each line is::

    {"message_id": "<uuid4>", "topic": "local", "subject": "...", "message": "...",
     "attributes": {"issue": "12"}, "sent_at": "2025-01-31T12:00:00Z"}

Lines are appended under an exclusive lock (``notifications.jsonl.lock``, see ``files``), each
with one ``write`` call, so concurrent writers never interleave lines.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from mcp_server.backends.base import NotificationBackend
from mcp_server.backends.local.files import exclusive
from mcp_server.core.models import NotificationReceipt
from mcp_server.errors import NotificationError
from mcp_server.settings import Settings

TOPIC = "local"
#: SNS refuses a subject longer than 100 characters.
MAX_SUBJECT = 100


def clean_subject(subject: str) -> str:
    """Return ``subject`` on one line and at most ``MAX_SUBJECT`` characters.

    Line breaks and other control characters become spaces (SNS refuses them); a longer
    subject is cut and ends with ``…``.
    """
    one_line = " ".join("".join(c if c.isprintable() else " " for c in subject).split())
    if len(one_line) <= MAX_SUBJECT:
        return one_line
    return one_line[: MAX_SUBJECT - 1] + "…"


class LocalNotificationBackend(NotificationBackend):
    """Appends notifications to ``settings.home / "notifications.jsonl"``.

    Args:
        settings: ``settings.home`` is the workspace; the file is created on first use.
    """

    def __init__(self, settings: Settings) -> None:
        self._path = Path(settings.home).absolute() / "notifications.jsonl"

    @property
    def path(self) -> Path:
        """The JSON-lines file notifications are appended to."""
        return self._path

    def notify(self, subject: str, message: str, attributes: dict[str, str]) -> NotificationReceipt:
        """Append one notification line.

        Args:
            subject: one-line summary; cut to 100 characters with ``…`` (the SNS limit).
            message: the body, any length.
            attributes: string attributes, e.g. ``{"issue": "12", "status": "succeeded"}``.

        Returns:
            The receipt: a uuid4 ``message_id`` and topic ``local``.

        Raises:
            NotificationError: the file cannot be written.
        """
        receipt = NotificationReceipt(message_id=str(uuid.uuid4()), topic=TOPIC)
        line = json.dumps(
            {
                "message_id": receipt.message_id,
                "topic": TOPIC,
                "subject": clean_subject(subject),
                "message": message,
                "attributes": {str(k): str(v) for k, v in attributes.items()},
                "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
            ensure_ascii=False,
        )
        self._append(line + "\n")
        return receipt

    def _append(self, line: str) -> None:
        """Append ``line`` under an exclusive lock on ``notifications.jsonl.lock``.

        Raises:
            NotificationError: the workspace is not writable.
        """
        try:
            with (
                exclusive(self._path.with_name(self._path.name + ".lock")),
                open(self._path, "a", encoding="utf-8") as handle,
            ):
                handle.write(line)
                handle.flush()
        except OSError as err:
            raise NotificationError(f"cannot append a notification to {self._path}: {err}") from err
