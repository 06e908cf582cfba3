"""History tools: record_training_history and record_report."""

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

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def record_report(
        folder: Annotated[
            str,
            Field(
                max_length=200,
                description="relative folder under training_history/, e.g. monitoring/NAME/JOB",
            ),
        ],
        markdown: Annotated[
            str, Field(max_length=200_000, description="the report; links relative to the folder")
        ],
        message: Annotated[str, Field(min_length=1, max_length=500, description="the commit message")],
        files: Annotated[dict[str, str], Field(description="relative name (plots/x.png) -> source URI")] = {},  # noqa: B006
    ) -> HistoryCommit:
        """Commit a report (a monitoring job's) as training_history/FOLDER/report.md with its files.

        The run index is not touched. The same content twice makes one commit.

        Returns:
            HistoryCommit: the report's path, commit_sha and, on GitHub, its URL.

        Raises:
            HistoryError: an unsafe folder or file name, an unreadable file, or a failed commit.
        """
        return backends.history.record_report(folder, markdown, files, message)
