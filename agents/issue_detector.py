"""The webhook handler: a GitHub delivery answered at once, then its work: a run, a comment, a decision.

The answer (``receive``) needs no more than the delivery store: a body over 1 MiB is 413; the
``X-Hub-Signature-256`` HMAC is checked over the raw bytes before anything is parsed (401);
``ping`` is answered; a missing delivery id, a body that is not a JSON object, or fields of the
wrong shape are 400 with the reason; events and actions the pipeline does not act on are 200
``ignored`` (a ``push`` is acted on only when it moves the default branch and touches
``training_containers/``); a delivery id seen before (even before a restart) is 200 ``duplicate``; anything
else is stored and answered 202 ``accepted``. No client mistake is answered 5xx.

The work (``process``), after the answer: authors whose ``author_association`` is not allowed
get a comment and no run; an invalid spec gets ONE comment listing every error and no run; a
valid spec starts an execution whose name is derived from ``X-GitHub-Delivery``; comments go
to ``IssueCommands``; a push starts the monitoring workflow with the ``code_change`` trigger for
every monitored endpoint whose spec sets ``retraining.triggers.code_change`` and whose model's
code it changed (``core.monitoring.code_change``). Its outcome is recorded with the delivery.

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
from mcp_server.backends.base import DeliveryStore
from mcp_server.backends.environments import registered_environments
from mcp_server.core.events import (
    MAX_DELIVERY_BYTES,
    IssueCommentEvent,
    IssuesEvent,
    PushEvent,
    parse_event,
)
from mcp_server.core.models import Delivery, IssueRef
from mcp_server.core.monitoring.code_change import (
    code_change_reason,
    model_code_changes,
    touches_containers,
)
from mcp_server.core.monitoring.models import MonitoringSchedule
from mcp_server.core.rendering.comments import spec_errors_comment, unauthorised_comment
from mcp_server.core.spec.bounds import shorten
from mcp_server.core.spec.issue_form import extract_spec
from mcp_server.core.spec.operator_commands import looks_like_command
from mcp_server.core.spec.schema import SpecValidationError, validate_spec
from mcp_server.core.workflow.state import RunConfig, Trigger, WorkflowInput
from mcp_server.errors import MlopsError

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "issue_templates" / "train.yml"
DEFAULT_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
#: Spec errors listed in an outcome (every one is in the comment).
MAX_LISTED_ERRORS = 20

CommentPoster = Callable[[int, str, str], None]
ScheduleLister = Callable[[], list[MonitoringSchedule]]


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
        monitoring_state_machine_arn: the monitoring workflow a push starts (code-change
            retraining); empty: pushes are ignored.
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
    monitoring_state_machine_arn: str = ""

    @classmethod
    def from_env(cls) -> DetectorConfig:
        """Build the configuration from the environment.

        Reads ``MLOPS_WEBHOOK_SECRET``, ``MLOPS_STATE_MACHINE_ARN``, ``MLOPS_ALLOWED_ASSOCIATIONS``
        (comma-separated), ``MLOPS_TRIGGER_LABEL``, ``MLOPS_ISSUE_TEMPLATE``,
        ``MLOPS_POLL_INTERVAL_S``, ``MLOPS_OPERATOR_TIMEOUT_S``, ``MLOPS_SFN_ENDPOINT_URL`` and
        ``MLOPS_MONITORING_STATE_MACHINE_ARN``.

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
            monitoring_state_machine_arn=env.get("MLOPS_MONITORING_STATE_MACHINE_ARN", ""),
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


def push_execution_name(endpoint_name: str, delivery_id: str) -> str:
    """The code-change monitoring execution of one endpoint for one push delivery.

    Returns:
        ``push-{endpoint}-{delivery}`` within Step Functions' 80 characters; the endpoint part
        is cut to 30 characters plus 6 hex digits of its SHA-256 when longer, so endpoints that
        share a prefix keep distinct names. A redelivery maps to the same name.
    """
    part = endpoint_name
    if len(part) > 37:
        part = f"{part[:30].rstrip('-')}-{hashlib.sha256(endpoint_name.encode()).hexdigest()[:6]}"
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", delivery_id)
    return f"push-{part}-{clean}"[:80]


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


class IssueDetector:
    """Answers webhook deliveries at once, then does their work; see the module docstring.

    Args:
        config: the detector's configuration.
        sfn_client: a boto3 Step Functions client.
        deliveries: where deliveries are kept from their answer until their work is done.
        post_comment: ``(issue_number, body, idempotency_key)``; defaults to the MCP tool.
        runtime_id: who processes deliveries here (a live runtime's id; the Lambda's request id).
        list_schedules: the monitored endpoints' schedules; defaults to the MCP tool.
    """

    def __init__(
        self,
        config: DetectorConfig,
        sfn_client: Any,
        deliveries: DeliveryStore,
        post_comment: CommentPoster | None = None,
        runtime_id: str = "webhook",
        list_schedules: ScheduleLister | None = None,
    ) -> None:
        """Load the issue form once; nothing is contacted until a delivery arrives."""
        self.config = config
        self.sfn = sfn_client
        self.deliveries = deliveries
        self.runtime_id = runtime_id
        self.post_comment = post_comment or _post_comment_via_mcp
        self.list_schedules = list_schedules or _list_schedules_via_mcp
        self.template = yaml.safe_load(config.template_path.read_text())
        self.commands = IssueCommands(
            sfn_client, self.post_comment, config.allowed_associations, config.state_machine_arn
        )

    # -----------------------------------------------------------------------------------------
    # The answer: checks that need no I/O but the delivery store, then 202
    # -----------------------------------------------------------------------------------------

    def receive(self, event: dict[str, Any], take: bool = False) -> dict[str, Any]:
        """Check one API Gateway proxy event and store it for its work; return the proxy response.

        Args:
            event: the proxy event.
            take: store the delivery as already taken by this detector's runtime (which then
                calls ``process`` itself), so no other runtime's worker picks it up.

        Returns:
            413 for a body over ``MAX_DELIVERY_BYTES``; 401 for a missing or wrong signature; 400
            for a missing delivery id, a body that is not a JSON object, or fields of the wrong
            shape (with the reason); 200 ``pong``, ``ignored`` (events and actions not acted on)
            or ``duplicate`` (a delivery id seen before); else 202 ``accepted``: the delivery is
            stored and its work happens after the answer (``process``).
        """
        try:
            headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
            body = _raw_body(event)
        except (AttributeError, TypeError, ValueError):
            return _response(400, {"status": "bad_request", "message": "not an HTTP request with a body"})
        if len(body) > MAX_DELIVERY_BYTES:
            return _response(
                413, {"status": "too_large", "message": f"the body is over {MAX_DELIVERY_BYTES} bytes"}
            )
        if not verify_signature(self.config.webhook_secret, body, headers.get("x-hub-signature-256")):
            return _response(401, {"status": "unauthorised", "message": "signature mismatch"})
        kind = headers.get("x-github-event", "")
        if kind == "ping":
            return _response(200, {"status": "pong"})
        if kind not in ("issues", "issue_comment", "push"):
            return _response(200, {"status": "ignored", "message": f"event {kind[:50]!r} is not handled"})
        delivery_id = headers.get("x-github-delivery", "")
        if not delivery_id or len(delivery_id) > 200:
            return _response(
                400, {"status": "bad_request", "message": "X-GitHub-Delivery is missing or too long"}
            )
        try:
            parsed = parse_event(kind, json.loads(body))  # type: ignore[arg-type]
        except ValueError as err:  # JSONDecodeError is a ValueError
            return _response(400, {"status": "bad_request", "message": shorten(str(err), 1000)})
        ignored = self._ignored(parsed)
        if ignored is not None:
            return _response(200, {"status": "ignored", "message": ignored})
        delivery = Delivery(
            delivery_id=delivery_id,
            event=kind,  # type: ignore[arg-type]
            payload=parsed.model_dump(mode="json"),
            received_at=datetime.now(UTC).isoformat(),
            status="processing" if take else "received",
            runtime_id=self.runtime_id if take else None,
        )
        if not self.deliveries.claim(delivery):
            logger.info("redelivery ignored", extra={"delivery": delivery_id})
            return _response(200, {"status": "duplicate", "delivery_id": delivery_id})
        return _response(202, {"status": "accepted", "delivery_id": delivery_id})

    def _ignored(self, event: IssuesEvent | IssueCommentEvent | PushEvent) -> str | None:
        """Why an event is not acted on (None when it is), decided from the payload alone."""
        trigger = self.config.trigger_label
        if isinstance(event, PushEvent):
            default = event.repository.default_branch
            if event.deleted or event.ref != f"refs/heads/{default}":
                return f"only pushes to the default branch {default[:100]} are read"
            if not touches_containers(event.paths):
                return "the push changes nothing under training_containers/"
            if not self.config.monitoring_state_machine_arn:
                return "no monitoring workflow is configured (MLOPS_MONITORING_STATE_MACHINE_ARN)"
            return None
        if isinstance(event, IssueCommentEvent):
            if event.action != "created":
                return "only new comments are read; edits are ignored"
            if event.comment.user.type == "Bot":
                return "comments by bots are not commands"
            if not looks_like_command(event.comment.body or ""):
                return "not a command"
            return None
        labels = {label.name for label in event.issue.labels}
        if event.action == "labeled" and (event.label is None or event.label.name != trigger):
            return f"label is not {trigger}"
        if event.action not in ("opened", "labeled") or trigger not in labels:
            return f"not an {trigger} request"
        return None

    # -----------------------------------------------------------------------------------------
    # The work, after the answer
    # -----------------------------------------------------------------------------------------

    def process(self, delivery_id: str, taken: bool = False) -> dict[str, Any] | None:
        """Do a stored delivery's work, once, and record its outcome.

        Args:
            delivery_id: the delivery.
            taken: it was claimed already taken by this runtime (``receive(take=True)``).

        Returns:
            The outcome (``status``: started, invalid_spec, refused, duplicate, resumed,
            invalid_patch, status, not_waiting, stale, ignored, failed, or unavailable when a
            waiting run cannot take a decision now: the delivery is then kept for a later try);
            None when another live runtime has it or it is done.
        """
        delivery = (
            self.deliveries.get(delivery_id) if taken else self.deliveries.take(delivery_id, self.runtime_id)
        )
        if delivery is None or delivery.status == "done":
            return None
        try:
            outcome = self._work(delivery)
        except RunUnavailable as err:
            outcome = {"status": "unavailable", "message": str(err)}
            self.deliveries.release(delivery_id, outcome)
            return outcome
        except Exception as err:  # noqa: BLE001 - the outcome records it; the worker goes on
            logger.exception("delivery failed", extra={"delivery": delivery_id})
            outcome = {"status": "failed", "message": shorten(f"{type(err).__name__}: {err}", 2000)}
        self.deliveries.finish(delivery_id, outcome)
        return outcome

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Answer a delivery and, when it was accepted, do its work now (one process does both).

        Returns:
            The answer of ``receive``; for an accepted delivery its body also carries the
            work's outcome (``status`` is then the outcome's).
        """
        answer = self.receive(event, take=True)
        if answer["statusCode"] != 202:
            return answer
        accepted = json.loads(answer["body"])
        outcome = self.process(accepted["delivery_id"], taken=True) or {"status": "accepted"}
        return _response(202, {**accepted, **outcome})

    def _work(self, delivery: Delivery) -> dict[str, Any]:
        if delivery.event == "issue_comment":
            return self.commands.handle(IssueCommentEvent.model_validate(delivery.payload))
        if delivery.event == "push":
            return self._push(PushEvent.model_validate(delivery.payload), delivery.delivery_id)
        return self._issue_event(IssuesEvent.model_validate(delivery.payload), delivery.delivery_id)

    def _issue_event(self, event: IssuesEvent, delivery: str) -> dict[str, Any]:
        issue = event.issue
        number, author, association = issue.number, issue.user.login, issue.author_association
        if association not in self.config.allowed_associations:
            self._comment(
                number,
                unauthorised_comment(author, association, self.config.allowed_associations),
                f"refused:{delivery}",
            )
            return {"status": "refused", "message": f"{author} is {association}"}
        try:
            spec = validate_spec(extract_spec(issue.body or "", self.template), registered_environments)
        except SpecValidationError as err:
            self._comment(number, spec_errors_comment(err.errors), f"spec-errors:{delivery}")
            return {"status": "invalid_spec", "errors": [str(e) for e in err.errors[:MAX_LISTED_ERRORS]]}
        return self._start(event, spec, delivery)

    def _comment(self, number: int, body: str, key: str) -> None:
        """Post a reply; an issue that cannot be commented on is logged, not fatal."""
        try:
            self.post_comment(number, body, key)
        except MlopsError as err:
            logger.warning("comment not posted", extra={"issue": number, "error": str(err)})

    def _start(self, event: IssuesEvent, spec: Any, delivery: str) -> dict[str, Any]:
        issue = event.issue
        name = execution_name(issue.number, delivery)
        execution_input = WorkflowInput(
            issue=IssueRef(
                number=issue.number,
                title=issue.title[:1000],
                url=issue.html_url,
                author=issue.user.login,
                repository=event.repository.full_name if event.repository else "local/issues",
            ),
            spec=spec.model_dump(mode="json"),
            spec_hash=spec.spec_hash(),
            run_id=name,
            run_started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            trigger=Trigger(kind="issue", delivery_id=delivery, by=issue.user.login),
            config=RunConfig(
                poll_interval_s=self.config.poll_interval_s,
                operator_timeout_s=self.config.operator_timeout_s,
                describe_wait_s=self.config.describe_wait_s,
            ),
        )
        if self._exists(name):
            logger.info("redelivery ignored", extra={"execution": name})
            return {"status": "duplicate", "execution_name": name}
        try:
            started = self.sfn.start_execution(
                stateMachineArn=self.config.state_machine_arn,
                name=name,
                input=execution_input.model_dump_json(exclude_none=True),
            )
        except self.sfn.exceptions.ExecutionAlreadyExists:
            logger.info("redelivery ignored", extra={"execution": name})
            return {"status": "duplicate", "execution_name": name}
        logger.info("execution started", extra={"execution": name, "issue": issue.number})
        return {"status": "started", "execution_name": name, "execution_arn": started["executionArn"]}

    def _exists(self, name: str) -> bool:
        """Whether an execution of this name exists (running or not) on the state machine."""
        machine = self.config.state_machine_arn
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        try:
            self.sfn.describe_execution(executionArn=arn)
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return False
        return True

    def _push(self, event: PushEvent, delivery: str) -> dict[str, Any]:
        """Start a code-change monitoring execution for each model whose code the push changed.

        Returns:
            ``status`` ``started`` with ``executions`` (endpoint, name, ARN, whether this
            delivery started it) and ``skipped`` (endpoints not retrained, and why), or
            ``ignored`` when no monitored model's code changed.
        """
        executions, skipped = [], []
        pusher = (event.sender.login if event.sender else "") or event.pusher.name
        for schedule in self.list_schedules():
            endpoint = schedule.endpoint_name
            if schedule.triggers is None or not schedule.triggers.code_change:
                continue
            changed = model_code_changes(event.paths, str(schedule.spec.get("algorithm", "")))
            if not changed:
                skipped.append({"endpoint_name": endpoint, "why": "the push does not touch its model's code"})
                continue
            name = push_execution_name(endpoint, delivery)
            execution_input = {
                "endpoint_name": endpoint,
                "trigger": "code_change",
                "requested_by": pusher[:100],
                "reason": code_change_reason(changed, event.after, event.branch, pusher)[:2000],
                "delivery_id": delivery,
            }
            try:
                started = self.sfn.start_execution(
                    stateMachineArn=self.config.monitoring_state_machine_arn,
                    name=name,
                    input=json.dumps(execution_input),
                )
            except self.sfn.exceptions.ExecutionAlreadyExists:
                skipped.append({"endpoint_name": endpoint, "why": f"execution {name} exists already"})
                continue
            logger.info("code-change monitoring started", extra={"execution": name, "endpoint": endpoint})
            executions.append(
                {"endpoint_name": endpoint, "execution_name": name, "execution_arn": started["executionArn"]}
            )
        if not executions:
            return {"status": "ignored", "message": "no monitored model's code changed", "skipped": skipped}
        return {"status": "started", "executions": executions, "skipped": skipped}


def _raw_body(event: dict[str, Any]) -> bytes:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(raw, validate=True)
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def _post_comment_via_mcp(issue_number: int, body: str, idempotency_key: str) -> None:
    call_tool(
        "post_comment", {"issue_number": issue_number, "body": body, "idempotency_key": idempotency_key}
    )


def _list_schedules_via_mcp() -> list[MonitoringSchedule]:
    return [MonitoringSchedule.model_validate(s) for s in call_tool("list_monitoring_schedules", {})]


@functools.cache
def _default_detector() -> IssueDetector:
    import boto3

    from mcp_server.backends.factory import build_delivery_store
    from mcp_server.secrets import load_secrets
    from mcp_server.settings import Settings

    load_secrets(os.environ)  # AWS: the webhook secret from Secrets Manager, once per cold start
    config = DetectorConfig.from_env()
    deliveries = build_delivery_store(Settings.from_env())
    sfn = boto3.client("stepfunctions", endpoint_url=config.sfn_endpoint_url)
    return IssueDetector(config, sfn, deliveries, runtime_id="webhook-lambda")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler (API Gateway proxy integration); configuration from the environment."""
    return _default_detector().handle(event)
