"""Retrain tools: the runs waiting for an operator's reply on their issue, and retrain executions."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import BaseModel, ConfigDict, Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import WaitingRun
from mcp_server.core.workflow.state import WorkflowInput
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded


class RetrainingStart(BaseModel):
    """A retrain execution: its name, ARN, and whether this call started it."""

    model_config = ConfigDict(extra="forbid")

    execution_name: str
    execution_arn: str
    started: bool


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

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def start_retraining(
        execution_name: Annotated[
            str, Field(pattern=r"^[a-zA-Z0-9_-]{1,80}$", description="the execution's name (unique)")
        ],
        workflow_input: Annotated[
            WorkflowInput, Field(description="the run: its issue, spec, and the trigger that started it")
        ],
    ) -> RetrainingStart:
        """Start a retrain execution of the training workflow (FR-025).

        The run goes through the whole workflow: data preparation on the fresh data, training,
        evaluation, the judge, registration, the champion/challenger comparison and the spec's
        deployment strategy, and its record names the trigger. An execution of that name that
        exists is not started again.

        Returns:
            RetrainingStart: the execution's ARN, and whether this call started it.

        Raises:
            MlopsError: no training workflow is configured, or Step Functions refused.
        """
        arn, started = backends.executions.start(
            execution_name, workflow_input.model_dump_json(exclude_none=True)
        )
        return RetrainingStart(execution_name=execution_name, execution_arn=arn, started=started)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def describe_retraining(
        execution_arn: Annotated[str, Field(max_length=300, description="the retrain execution")],
    ) -> str:
        """Return a retrain execution's status: RUNNING, SUCCEEDED, FAILED, ... (UNKNOWN when gone)."""
        return backends.executions.status(execution_arn)
