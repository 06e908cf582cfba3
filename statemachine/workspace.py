"""The one door from ``statemachine/`` to the backends: the local workspace and what it holds.

Everything else in this folder reaches the backends through the MCP server (the agents' tools);
the runtime, the CLI and the recorder need a few local parts directly, and import them from
here only: the workspace folders and webhook secret, the backends factory, runtime leases,
file primitives, the issue store the CLI reads, and the warm-up of the tools' libraries.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from mcp_server.backends.base import Backends
from mcp_server.backends.environments import registered_environments
from mcp_server.backends.factory import build_backends, build_issue_backend
from mcp_server.backends.local.files import exclusive, write_json_atomic
from mcp_server.backends.local.runtimes import RuntimeLease, live_runtimes, runtime_alive
from mcp_server.settings import Settings

__all__ = [
    "FOLDERS",
    "Backends",
    "RuntimeLease",
    "build_backends",
    "build_issue_backend",
    "ensure_workspace",
    "exclusive",
    "live_runtimes",
    "local_issue_store",
    "registered_environments",
    "runtime_alive",
    "warm_up_libraries",
    "webhook_secret",
    "write_json_atomic",
]

FOLDERS = ("datasets", "jobs", "evaluations", "models", "executions", "issues", "logs", "deliveries")


def ensure_workspace(settings: Settings) -> Path:
    """Create the workspace folders (idempotent) and return the workspace path."""
    for folder in FOLDERS:
        (settings.home / folder).mkdir(parents=True, exist_ok=True)
    return settings.home


def local_issue_store(settings: Settings):  # noqa: ANN201 - the local store's own type
    """The workspace's local issue store (issues and the comments the pipeline posted)."""
    from mcp_server.backends.local.issues import LocalIssueStore

    return LocalIssueStore(settings)


def warm_up_libraries(settings: Settings) -> None:
    """Open the MLflow store and start the warm job launcher (the tools' one-off costs)."""
    from mcp_server.backends.local import launcher
    from mcp_server.backends.local.mlflow_store import open_client

    open_client(settings)
    launcher.warm_up()


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
        # written whole, then linked into place: a concurrent first run reads all of it or none
        fd, temporary = tempfile.mkstemp(dir=settings.home, prefix=".webhook_secret.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.chmod(temporary, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text().strip().encode()
