"""The local notification backend: JSON lines in the workspace."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mcp_server.backends.local.notification import LocalNotificationBackend, clean_subject
from mcp_server.errors import NotificationError
from mcp_server.settings import Settings


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws")


def test_notify_appends_one_json_line_and_returns_a_receipt(settings: Settings) -> None:
    backend = LocalNotificationBackend(settings)

    attributes = {"issue": "12", "status": "ok"}
    receipt = backend.notify("Issue #12 succeeded", "Model bc v3 registered.", attributes)
    backend.notify("Issue #13 failed", "TrainingJobFailed", {"issue": "13"})

    lines = read_lines(settings.home / "notifications.jsonl")
    assert len(lines) == 2
    first = lines[0]
    assert first["message_id"] == receipt.message_id
    assert uuid.UUID(receipt.message_id).version == 4
    assert receipt.topic == "local"
    assert first["topic"] == "local"
    assert first["subject"] == "Issue #12 succeeded"
    assert first["message"] == "Model bc v3 registered."
    assert first["attributes"] == {"issue": "12", "status": "ok"}
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$", first["sent_at"])
    assert lines[1]["subject"] == "Issue #13 failed"
    assert lines[1]["message_id"] != receipt.message_id


def test_long_subject_is_cut_to_100_characters_with_an_ellipsis(settings: Settings) -> None:
    backend = LocalNotificationBackend(settings)

    backend.notify("x" * 150, "body", {})
    backend.notify("y" * 100, "body", {})

    lines = read_lines(backend.path)
    assert lines[0]["subject"] == "x" * 99 + "…"
    assert len(lines[0]["subject"]) == 100
    assert lines[1]["subject"] == "y" * 100


def test_subject_is_kept_on_one_line() -> None:
    assert clean_subject("Issue #12\nfailed:\tOOM") == "Issue #12 failed: OOM"


def test_concurrent_notifications_are_whole_lines(settings: Settings) -> None:
    backend = LocalNotificationBackend(settings)
    message = "m" * 20_000  # longer than a pipe buffer: interleaving would corrupt lines

    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = list(pool.map(lambda n: backend.notify(f"s{n}", message, {"n": str(n)}), range(40)))

    lines = read_lines(backend.path)
    assert len(lines) == 40
    assert {line["message_id"] for line in lines} == {r.message_id for r in receipts}
    assert all(line["message"] == message for line in lines)


def test_unwritable_workspace_raises_notification_error(tmp_path: Path) -> None:
    home = tmp_path / "file-not-folder"
    home.write_text("")

    with pytest.raises(NotificationError, match="cannot append a notification"):
        LocalNotificationBackend(Settings(home=home)).notify("s", "m", {})
