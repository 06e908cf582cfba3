"""The local workspace (``.mlops/``, or ``MLOPS_HOME``): folders and the webhook secret."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mcp_server.settings import Settings

FOLDERS = ("datasets", "jobs", "evaluations", "models", "executions", "issues", "logs")


def ensure_workspace(settings: Settings) -> Path:
    """Create the workspace folders (idempotent) and return the workspace path."""
    for folder in FOLDERS:
        (settings.home / folder).mkdir(parents=True, exist_ok=True)
    return settings.home


def webhook_secret(settings: Settings, environ: dict[str, str] | None = None) -> bytes:
    """Return ``MLOPS_WEBHOOK_SECRET``, or the workspace's own secret, generated once.

    The generated secret is 32 random bytes (hex) in ``{home}/webhook_secret``, readable by the
    owner only. ``mlops run`` signs with it and ``mlops serve`` verifies with it; set the same
    value as the GitHub webhook's secret to receive real deliveries.
    """
    env = os.environ if environ is None else environ
    if env.get("MLOPS_WEBHOOK_SECRET"):
        return env["MLOPS_WEBHOOK_SECRET"].encode()
    path = settings.home / "webhook_secret"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
