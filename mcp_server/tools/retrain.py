"""Retrain tools: the runs waiting for an operator's reply on their issue."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import WaitingRun
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded

RunId = Annotated[str, Field(min_length=1, max_length=80, description="the run's first execution name")]


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the retrain tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def await_operator(
        run: Annotated[WaitingRun, Field(description="the run, its task token and its state")],
    ) -> WaitingRun:
        """Record that a run waits for an operator (replaces the record of the same run_id).

        The task token resumes the workflow when an authorised person replies on the issue
        (/retrain, /approve, /cancel); the record survives a server restart.

        Returns:
            WaitingRun: as stored.

        Raises:
            MlopsError: the store cannot be written.
        """
        return backends.waiting.save(run)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def list_waiting_runs(
        issue_number: Annotated[int | None, Field(ge=1, description="only this issue's runs")] = None,
    ) -> list[WaitingRun]:
        """List the runs waiting for an operator, oldest first.

        Returns:
            A list of WaitingRun: run_id, issue_number, execution_arn, task_token, attempt,
            max_attempts, state, waiting_since and timeout_at (ISO-8601 UTC).
        """
        return backends.waiting.list(issue_number)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def complete_waiting_run(run_id: RunId) -> WaitingRun:
        """Take a run off the waiting list once its workflow has been resumed (or ended).

        Returns:
            WaitingRun: the record that was removed.

        Raises:
            NotFoundError: no run of that id is waiting.
        """
        run = backends.waiting.get(run_id)
        backends.waiting.remove(run_id)
        return run
