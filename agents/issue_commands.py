"""Operator commands on an issue: ``/retrain``, ``/approve``, ``/cancel``, ``/status``, and more.

``/rollback [version]`` and ``/deploy`` act on endpoints (``agents.endpoint_commands``).

Called by the webhook handler for ``issue_comment`` deliveries whose signature already checked.
Only ``created`` comments count (edited ones are ignored), only from authorised associations
(others get a reply and nothing changes). A command acts on the issue's waiting run, and only
when the comment was written after that run began waiting, so a redelivered old command never
steers a later attempt. ``/retrain`` merges the patch into the spec (RFC 7386), re-validates it
(errors go back as a comment and the run keeps waiting), shows the diff, and resumes the
workflow with attempt + 1; ``/approve`` and ``/cancel`` resume it with the decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from agents.endpoint_commands import EndpointCommands
from agents.runtime import call_tool, logger
from mcp_server.backends.environments import registered_environments
from mcp_server.core.events import IssueCommentEvent
from mcp_server.core.models import WaitingRun
from mcp_server.core.rendering.comments import (
    approved_comment,
    cancelled_comment,
    not_waiting_comment,
    patch_errors_comment,
    retrain_accepted_comment,
    status_reply,
    unauthorised_command_comment,
)
from mcp_server.core.spec.operator_commands import Command, merge_patch, parse_command, spec_diff
from mcp_server.core.spec.schema import SpecValidationError, validate_spec
from mcp_server.core.workflow.records import next_attempt, now_iso
from mcp_server.core.workflow.state import OperatorDecision, WorkflowInput, WorkflowState

CommentPoster = Callable[[int, str, str], None]


class RunUnavailable(Exception):
    """The waiting run's execution cannot be resumed now (its engine restarted): retry later."""


def _after(created_at: str | None, waiting_since: str) -> bool:
    """Whether a comment was written after the wait began (an unreadable time counts as after)."""
    if not created_at:
        return True
    try:
        written = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        return written >= datetime.fromisoformat(waiting_since)
    except (ValueError, TypeError):
        return True


class IssueCommands:
    """Applies operator commands to waiting runs.

    Args:
        sfn_client: a boto3 Step Functions client (``send_task_success`` resumes a run).
        post_comment: ``(issue_number, body, idempotency_key)``.
        allowed_associations: ``author_association`` values that may steer runs.
    """

    def __init__(
        self,
        sfn_client: Any,
        post_comment: CommentPoster,
        allowed_associations: frozenset[str],
        state_machine_arn: str | None = None,
    ) -> None:
        """Keep the collaborators; nothing is contacted until a command arrives."""
        self.sfn = sfn_client
        self.post_comment = post_comment
        self.allowed = allowed_associations
        self.endpoints = EndpointCommands(sfn_client, state_machine_arn, post_comment)

    def handle(self, event: IssueCommentEvent) -> dict[str, Any]:
        """Handle one ``issue_comment`` event.

        Returns:
            ``{"status": ...}``: ignored, refused, invalid_patch, status, not_waiting, stale, or
            resumed (with ``action`` and ``run_id``).

        Raises:
            RunUnavailable: the run waits but its execution cannot take the decision now.
        """
        comment, number = event.comment, event.issue.number
        if event.action != "created":
            return {"status": "ignored", "message": "only new comments are read; edits are ignored"}
        if comment.user.type == "Bot":
            return {"status": "ignored", "message": "comments by bots are not commands"}
        text = comment.body or ""
        try:
            command = parse_command(text)
            patch_errors = None
        except SpecValidationError as err:
            command, patch_errors = Command(kind="retrain", patch=None, text=text[:200]), err
        if command is None:
            return {"status": "ignored", "message": "not a command"}
        login, comment_id, association = comment.user.login, comment.id, comment.author_association
        if association not in self.allowed:
            body = unauthorised_command_comment(login, association, self.allowed)
            self.post_comment(number, body, f"refused:{comment_id}")
            return {"status": "refused", "message": f"{login} is {association}"}
        if command.kind in ("rollback", "deploy"):
            return self.endpoints.handle(number, command, login, comment_id)
        runs = [
            WaitingRun.model_validate(r) for r in call_tool("list_waiting_runs", {"issue_number": number})
        ]
        if command.kind == "status":
            self.post_comment(number, self._status(number, runs), f"status:{comment_id}")
            return {"status": "status"}
        if not runs:
            self.post_comment(number, not_waiting_comment(login, f"/{command.kind}"), f"reply:{comment_id}")
            return {"status": "not_waiting"}
        run = runs[-1]
        if not _after(comment.created_at, run.waiting_since):
            return {"status": "stale", "message": "the comment is older than the run's wait"}
        if patch_errors is not None:
            self.post_comment(number, patch_errors_comment(patch_errors.errors), f"reply:{comment_id}")
            return {"status": "invalid_patch", "errors": [str(e) for e in patch_errors.errors[:20]]}
        return self._decide(run, command, login, comment_id)

    def _decide(self, run: WaitingRun, command: Command, login: str, comment_id: Any) -> dict[str, Any]:
        number = run.issue_number
        state = WorkflowState.model_validate(run.state)
        decision = OperatorDecision(
            action=command.kind,  # type: ignore[arg-type]
            by=login,
            at=now_iso(),
            comment_id=comment_id if isinstance(comment_id, int) else None,
        )
        new_state: WorkflowInput
        if command.kind == "retrain":
            try:
                new_state, diff = self._retrain_state(state, command.patch or {}, decision)
            except SpecValidationError as err:
                self.post_comment(number, patch_errors_comment(err.errors), f"reply:{comment_id}")
                return {"status": "invalid_patch", "errors": [str(e) for e in err.errors[:20]]}
            reply = retrain_accepted_comment(login, run.attempt + 1, diff)
        elif command.kind == "approve":
            new_state, reply = (
                state.model_copy(update={"operator": decision}),
                approved_comment(login, run.attempt),
            )
        else:
            new_state, reply = state.model_copy(update={"operator": decision}), cancelled_comment(login)
        self._resume(run, new_state.model_dump(mode="json", exclude_none=True))
        call_tool("complete_waiting_run", {"run_id": run.run_id})
        self.post_comment(number, reply, f"reply:{comment_id}")
        logger.info("run resumed", extra={"run_id": run.run_id, "action": command.kind, "by": login})
        return {"status": "resumed", "action": command.kind, "run_id": run.run_id}

    def _retrain_state(
        self, state: WorkflowState, patch: dict[str, Any], decision: OperatorDecision
    ) -> tuple[WorkflowInput, str]:
        spec = validate_spec(merge_patch(state.spec, patch), registered_environments)
        new_spec = spec.model_dump(mode="json")
        diff = spec_diff(
            state.spec, new_spec, f"spec (attempt {state.attempt})", f"spec (attempt {state.attempt + 1})"
        )
        decision = decision.model_copy(update={"patch": patch, "diff": diff})
        return next_attempt(state, new_spec, spec.spec_hash(), decision), diff

    def _resume(self, run: WaitingRun, new_state: dict[str, Any]) -> None:
        try:
            self.sfn.send_task_success(taskToken=run.task_token, output=json.dumps(new_state))
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            raise RunUnavailable(
                f"run {run.run_id} waits but its execution cannot be resumed now ({code}); "
                "the decision is kept for the webhook's redelivery"
            ) from err

    def _status(self, number: int, runs: list[WaitingRun]) -> str:
        if runs:
            run = runs[-1]
            return status_reply(
                run_id=run.run_id,
                state="waiting for a reply on the issue",
                attempt=run.attempt,
                max_attempts=run.max_attempts,
                waiting_since=run.waiting_since,
                timeout_at=run.timeout_at,
            )
        return status_reply(
            run_id=None,
            state="no run is waiting on this issue",
            attempt=None,
            max_attempts=None,
            waiting_since=None,
            timeout_at=None,
        )
