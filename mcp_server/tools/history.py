"""History tools: record_training_history."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.settings import Settings
from mcp_server.tools.guard import WRITE, guarded


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the history tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def record_training_history(
        record: Annotated[HistoryRecord, Field(description="the run's record")],
        files: Annotated[
            dict[str, str],
            Field(description=("files committed beside the record: relative name -> source URI (plots)")),
        ] = {},  # noqa: B006
    ) -> HistoryCommit:
        """Commit a run's Markdown record under training_history/ and update the index.

        The record shows the issue, spec and hash, data version, attempt, metrics against
        thresholds, verdict, model version, timings and plots. The same record twice makes
        one commit; concurrent records are all kept.

        Returns:
            HistoryCommit: path of the record, commit_sha, index_path, repository.

        Raises:
            HistoryError: the repository cannot be written or committed.
        """
        return backends.history.record_training_history(record, files or None)
