"""The webhook handler: a GitHub ``issues`` event in, a started execution (or a comment) out.

Order matters: the ``X-Hub-Signature-256`` HMAC is checked over the raw body before anything is
parsed (401 otherwise). Then ``ping`` is answered; ``issues`` ``opened``/``labeled`` events
carrying the trigger label are acted on; everything else is acknowledged and ignored. Authors
whose ``author_association`` is not allowed get a comment and no run. An invalid spec gets ONE
comment listing every error and no run. A valid spec starts an execution whose name is derived
from ``X-GitHub-Delivery``, so a redelivered webhook never starts a second run.

Takes an API Gateway (REST, proxy integration) event and returns a proxy response.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from agents.issue_commands import IssueCommands, RunUnavailable
from agents.runtime import call_tool, logger
from mcp_server.backends.environments import registered_environments
from mcp_server.core.models import IssueRef
from mcp_server.core.rendering.comments import spec_errors_comment, unauthorised_comment
from mcp_server.core.spec.issue_form import extract_spec
from mcp_server.core.spec.schema import SpecValidationError, validate_spec
from mcp_server.core.workflow.state import RunConfig, Trigger, WorkflowInput

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "issue_templates" / "train.yml"
DEFAULT_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})

CommentPoster = Callable[[int, str, str], None]


@dataclass(frozen=True)
class DetectorConfig:
    """What the webhook handler needs.

    Attributes:
        webhook_secret: the shared secret of the GitHub webhook (bytes).
        state_machine_arn: the workflow to start.
        allowed_associations: ``author_association`` values that may start runs.
        trigger_label: the label that asks for a training run.
        template_path: the issue form whose fields the body is read with.
        poll_interval_s: seconds between training-job status checks (passed to the workflow).
        operator_timeout_s: seconds a run waits for an operator's reply (default 7 days).
        describe_wait_s: seconds a training-job describe may long-poll (keep it under the
            agent Lambda's timeout).
        sfn_endpoint_url: Step Functions endpoint override (the local engine).
    """

    webhook_secret: bytes
    state_machine_arn: str
    allowed_associations: frozenset[str] = DEFAULT_ASSOCIATIONS
    trigger_label: str = "mlops:train"
    template_path: Path = DEFAULT_TEMPLATE
    poll_interval_s: int = 30
    operator_timeout_s: int = 7 * 24 * 3600
    describe_wait_s: int = 20
    sfn_endpoint_url: str | None = None

    @classmethod
    def from_env(cls) -> DetectorConfig:
        """Build the configuration from the environment.

        Reads ``MLOPS_WEBHOOK_SECRET``, ``MLOPS_STATE_MACHINE_ARN``, ``MLOPS_ALLOWED_ASSOCIATIONS``
        (comma-separated), ``MLOPS_TRIGGER_LABEL``, ``MLOPS_ISSUE_TEMPLATE``,
        ``MLOPS_POLL_INTERVAL_S``, ``MLOPS_OPERATOR_TIMEOUT_S`` and ``MLOPS_SFN_ENDPOINT_URL``.

        Raises:
            KeyError: the secret or the state machine ARN is not set.
        """
        env = os.environ
        associations = env.get("MLOPS_ALLOWED_ASSOCIATIONS")
        return cls(
            webhook_secret=env["MLOPS_WEBHOOK_SECRET"].encode(),
            state_machine_arn=env["MLOPS_STATE_MACHINE_ARN"],
            allowed_associations=frozenset(a.strip().upper() for a in associations.split(","))
            if associations
            else DEFAULT_ASSOCIATIONS,
            trigger_label=env.get("MLOPS_TRIGGER_LABEL", "mlops:train"),
            template_path=Path(env.get("MLOPS_ISSUE_TEMPLATE", str(DEFAULT_TEMPLATE))),
            poll_interval_s=int(env.get("MLOPS_POLL_INTERVAL_S", "30")),
            operator_timeout_s=int(env.get("MLOPS_OPERATOR_TIMEOUT_S", str(7 * 24 * 3600))),
            describe_wait_s=int(env.get("MLOPS_DESCRIBE_WAIT_S", "20")),
            sfn_endpoint_url=env.get("MLOPS_SFN_ENDPOINT_URL") or None,
        )


def sign(secret: bytes, body: bytes) -> str:
    """Return GitHub's ``X-Hub-Signature-256`` value for ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, signature: str | None) -> bool:
    """Check ``signature`` against the body's HMAC-SHA256 in constant time (GitHub's scheme)."""
    if not signature or not signature.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body), signature)


def execution_name(issue_number: int, delivery_id: str) -> str:
    """Derive the execution name from the delivery: redeliveries map to the same name.

    Returns:
        ``issue-{n}-{delivery}`` reduced to Step Functions' name rules (at most 80 characters of
        letters, digits, ``-`` and ``_``).
    """
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", delivery_id)
    return f"issue-{issue_number}-{clean}"[:80]


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


class IssueDetector:
    """Handles webhook deliveries; see the module docstring for the rules.

    Args:
        config: the detector's configuration.
        sfn_client: a boto3 Step Functions client.
        post_comment: ``(issue_number, body, idempotency_key)``; defaults to the MCP tool.
    """

    def __init__(
        self, config: DetectorConfig, sfn_client: Any, post_comment: CommentPoster | None = None
    ) -> None:
        """Load the issue form once; nothing is contacted until a delivery arrives."""
        self.config = config
        self.sfn = sfn_client
        self.post_comment = post_comment or _post_comment_via_mcp
        self.template = yaml.safe_load(config.template_path.read_text())
        self.commands = IssueCommands(sfn_client, self.post_comment, config.allowed_associations)

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Handle one API Gateway proxy event and return the proxy response.

        Returns:
            401 for a missing or wrong signature; 400 for a body that is not JSON; 503 when a
            waiting run cannot be resumed now (GitHub's redelivery retries it); else 200 with
            ``status``: pong, ignored, refused, invalid_spec, started, duplicate, or for comments
            invalid_patch, status, not_waiting, stale, resumed.
        """
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        if not verify_signature(self.config.webhook_secret, body, headers.get("x-hub-signature-256")):
            return _response(401, {"status": "unauthorised", "message": "signature mismatch"})
        kind = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery", "")
        if kind == "ping":
            return _response(200, {"status": "pong"})
        try:
            payload = json.loads(body)
        except ValueError:
            return _response(400, {"status": "bad_request", "message": "the body is not JSON"})
        if kind == "issue_comment":
            try:
                return _response(200, self.commands.handle(payload))
            except RunUnavailable as err:
                return _response(503, {"status": "unavailable", "message": str(err)})
        if kind != "issues":
            return _response(200, {"status": "ignored", "message": f"event {kind!r} is not handled"})
        if not delivery:
            return _response(400, {"status": "bad_request", "message": "X-GitHub-Delivery is missing"})
        return self._issue_event(payload, delivery)

    def _issue_event(self, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
        action, issue = payload.get("action"), payload.get("issue") or {}
        labels = {label.get("name") for label in issue.get("labels", [])}
        trigger = self.config.trigger_label
        if action == "labeled" and (payload.get("label") or {}).get("name") != trigger:
            return _response(200, {"status": "ignored", "message": f"label is not {trigger}"})
        if action not in ("opened", "labeled") or trigger not in labels:
            return _response(200, {"status": "ignored", "message": f"not an {trigger} request"})
        number = int(issue["number"])
        author = (issue.get("user") or {}).get("login", "")
        association = issue.get("author_association", "NONE")
        if association not in self.config.allowed_associations:
            self.post_comment(
                number,
                unauthorised_comment(author, association, self.config.allowed_associations),
                f"refused:{delivery}",
            )
            return _response(200, {"status": "refused", "message": f"{author} is {association}"})
        try:
            spec = validate_spec(
                extract_spec(issue.get("body") or "", self.template), registered_environments
            )
        except SpecValidationError as err:
            self.post_comment(number, spec_errors_comment(err.errors), f"spec-errors:{delivery}")
            return _response(200, {"status": "invalid_spec", "errors": [str(e) for e in err.errors]})
        return self._start(payload, spec, number, delivery)

    def _start(self, payload: dict[str, Any], spec: Any, number: int, delivery: str) -> dict[str, Any]:
        issue, repo = payload["issue"], payload.get("repository") or {}
        name = execution_name(number, delivery)
        author = (issue.get("user") or {}).get("login", "")
        execution_input = WorkflowInput(
            issue=IssueRef(
                number=number,
                title=str(issue.get("title") or "")[:1000],
                url=str(issue.get("html_url") or ""),
                author=author,
                repository=repo.get("full_name", "local/issues"),
            ),
            spec=spec.model_dump(mode="json"),
            spec_hash=spec.spec_hash(),
            run_id=name,
            run_started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            trigger=Trigger(kind="issue", delivery_id=delivery, by=author),
            config=RunConfig(
                poll_interval_s=self.config.poll_interval_s,
                operator_timeout_s=self.config.operator_timeout_s,
                describe_wait_s=self.config.describe_wait_s,
            ),
        )
        if self._exists(name):
            logger.info("redelivery ignored", extra={"execution": name})
            return _response(200, {"status": "duplicate", "execution_name": name})
        try:
            started = self.sfn.start_execution(
                stateMachineArn=self.config.state_machine_arn,
                name=name,
                input=execution_input.model_dump_json(exclude_none=True),
            )
        except self.sfn.exceptions.ExecutionAlreadyExists:
            logger.info("redelivery ignored", extra={"execution": name})
            return _response(200, {"status": "duplicate", "execution_name": name})
        logger.info("execution started", extra={"execution": name, "issue": number})
        return _response(
            200, {"status": "started", "execution_name": name, "execution_arn": started["executionArn"]}
        )

    def _exists(self, name: str) -> bool:
        """Whether an execution of this name exists (running or not) on the state machine."""
        machine = self.config.state_machine_arn
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        try:
            self.sfn.describe_execution(executionArn=arn)
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return False
        return True


def _post_comment_via_mcp(issue_number: int, body: str, idempotency_key: str) -> None:
    call_tool(
        "post_comment", {"issue_number": issue_number, "body": body, "idempotency_key": idempotency_key}
    )


@functools.cache
def _default_detector() -> IssueDetector:
    import boto3

    config = DetectorConfig.from_env()
    return IssueDetector(config, boto3.client("stepfunctions", endpoint_url=config.sfn_endpoint_url))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler (API Gateway proxy integration); configuration from the environment."""
    return _default_detector().handle(event)
