"""Endpoint commands on an issue: ``/rollback [version]`` and ``/deploy``.

``IssueCommands`` hands them here once the comment's author is authorised.

- ``/rollback [version]`` returns the endpoint this issue deployed to its previous champion (or
  to the named version it served), through the ``rollback_endpoint`` tool; the endpoint's
  deployment history records who asked.
- ``/deploy`` deploys the challenger that the champion/challenger gate held back on this issue's
  latest run: a new execution of the workflow starts at Deploy with that run's state and the
  operator's decision, so the strategy's traffic-shift loop and alarms run as usual, and the
  run's record is written again with the deployment and who asked for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agents.runtime import call_tool, logger
from mcp_server.core.deployment.models import EndpointDescription
from mcp_server.core.rendering.reply_comments import (
    deploy_refused_comment,
    deploy_started_comment,
    rollback_done_comment,
    rollback_refused_comment,
)
from mcp_server.core.spec.operator_commands import Command
from mcp_server.core.workflow.records import now_iso
from mcp_server.core.workflow.state import OperatorDecision, WorkflowState
from mcp_server.errors import MlopsError

CommentPoster = Callable[[int, str, str], None]


def deployed_by(issue_number: int) -> str:
    """The ``by`` the workflow writes in an endpoint's history for a deployment of this issue."""
    return f"workflow (issue #{issue_number})"


class EndpointCommands:
    """Applies ``/rollback`` and ``/deploy``.

    Args:
        sfn_client: a boto3 Step Functions client (``/deploy`` starts an execution).
        state_machine_arn: the workflow, or None when this handler cannot start executions.
        post_comment: ``(issue_number, body, idempotency_key)``.
    """

    def __init__(self, sfn_client: Any, state_machine_arn: str | None, post_comment: CommentPoster) -> None:
        """Keep the collaborators."""
        self.sfn, self.machine, self.post_comment = sfn_client, state_machine_arn, post_comment

    def handle(self, number: int, command: Command, login: str, comment_id: Any) -> dict[str, Any]:
        """Run ``/rollback`` or ``/deploy`` for issue ``number``; the reply goes on the issue.

        Returns:
            ``{"status": "rolled_back" | "deploying" | "refused", ...}``.
        """
        if command.kind == "rollback":
            return self._rollback(number, command.text.strip() or None, login, comment_id)
        return self._deploy(number, login, comment_id)

    def _rollback(self, number: int, version: str | None, login: str, comment_id: Any) -> dict[str, Any]:
        endpoint = self._endpoint_of(number)
        if endpoint is None:
            reason = "no endpoint was deployed from this issue"
            self.post_comment(number, rollback_refused_comment(login, reason), f"reply:{comment_id}")
            return {"status": "refused", "message": reason}
        arguments = {
            "endpoint_name": endpoint.name,
            "version": version,
            "by": login,
            "reason": f"/rollback by @{login} on issue #{number}",
        }
        try:
            after = EndpointDescription.model_validate(call_tool("rollback_endpoint", arguments))
        except MlopsError as err:
            self.post_comment(number, rollback_refused_comment(login, str(err)), f"reply:{comment_id}")
            return {"status": "refused", "message": str(err)}
        serving = after.champion
        version_now = (serving.model.semantic_version or serving.model.version) if serving else "?"
        self.post_comment(
            number, rollback_done_comment(login, after.name, version_now, after.url), f"reply:{comment_id}"
        )
        logger.info(
            "endpoint rolled back", extra={"endpoint": after.name, "by": login, "version": version_now}
        )
        return {"status": "rolled_back", "endpoint": after.name, "version": version_now}

    def _endpoint_of(self, number: int) -> EndpointDescription | None:
        """The endpoint this issue's runs deployed to most recently (by its deployment history)."""
        found = [EndpointDescription.model_validate(e) for e in call_tool("list_endpoints", {})]
        mine = [
            (event.at, endpoint)
            for endpoint in found
            if endpoint.status != "Stopped"
            for event in endpoint.history
            if event.by == deployed_by(number)
        ]
        return max(mine, key=lambda pair: pair[0])[1] if mine else None

    def _deploy(self, number: int, login: str, comment_id: Any) -> dict[str, Any]:
        state = self._held_run(number)
        if state is None or self.machine is None:
            reason = (
                "no run of this issue has a challenger held back by the champion/challenger gate"
                if self.machine is not None
                else "this webhook handler cannot start the workflow"
            )
            self.post_comment(number, deploy_refused_comment(login, reason), f"reply:{comment_id}")
            return {"status": "refused", "message": reason}
        assert state.deployment is not None
        decision = OperatorDecision(
            action="deploy",
            by=login,
            at=now_iso(),
            comment_id=comment_id if isinstance(comment_id, int) else None,
        )
        reason = f"{state.deployment.reason}; deployed anyway by @{login} (/deploy)"
        deployment = state.deployment.model_copy(update={"status": "compared", "reason": reason})
        resumed = state.model_copy(
            update={"operator": decision, "deployment": deployment, "resume": "Deploy", "history": None}
        )
        name = f"{state.run_id}-deploy-{comment_id}"[:80]
        started = self.sfn.start_execution(
            stateMachineArn=self.machine,
            name=name,
            input=json.dumps(resumed.model_dump(mode="json", exclude_none=True)),
        )
        self.post_comment(
            number, deploy_started_comment(login, deployment.challenger_version, deployment.endpoint_name),
            f"reply:{comment_id}",
        )  # fmt: skip
        return {"status": "deploying", "execution_arn": started["executionArn"]}

    def _held_run(self, number: int) -> WorkflowState | None:
        """The final state of this issue's latest succeeded run, when its challenger was held back."""
        paginator = self.sfn.get_paginator("list_executions")
        latest = None
        for page in paginator.paginate(stateMachineArn=self.machine, statusFilter="SUCCEEDED"):
            for execution in page["executions"]:
                if execution["name"].startswith(f"issue-{number}-") and (
                    latest is None or execution["startDate"] > latest["startDate"]
                ):
                    latest = execution
        if latest is None:
            return None
        output = self.sfn.describe_execution(executionArn=latest["executionArn"]).get("output")
        try:
            state = WorkflowState.model_validate(json.loads(output or "{}"))
        except ValueError:
            return None
        return state if state.deployment is not None and state.deployment.status == "held" else None
