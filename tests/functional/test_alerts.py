"""Alert delivery against real servers: Slack (a local HTTP server), SMTP (aiosmtpd), SNS (moto),
GitHub (the local issue store, and the fake GitHub API speaking its wire format).

A channel that is down is retried with backoff, reported as not delivered, and never stops the
other channels.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiosmtpd.controller import Controller

from mcp_server.backends.alerts import AlertDispatcher
from mcp_server.backends.github.issues import GitHubIssueBackend
from mcp_server.backends.local.issues import LocalIssueStore
from mcp_server.core.monitoring.models import AlertMessage
from mcp_server.settings import Settings
from tests.github_api import OWNER, REPO, TOKEN, FakeGitHub, serve


class SlackHook:
    """A local Slack incoming webhook: records each POST; answers ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(json.loads(body))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"server_error")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class Inbox:
    """aiosmtpd's handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def slack() -> Iterator[SlackHook]:
    hook = SlackHook()
    yield hook
    hook.close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd checks its server by connecting: it needs a real port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def alert(**changes: Any) -> AlertMessage:
    values: dict[str, Any] = {
        "endpoint_name": "bc",
        "model_name": "bc",
        "subject": "[issue-mlops] bc: drift",
        "text": "Endpoint bc: 2 feature(s) drifted",
        "markdown": "### Monitoring alert: `bc`\n\n- **drift**: 2 feature(s) drifted",
        "issue_number": 1,
        "issue_title": "Train bc",
        "spec_yaml": "task: classification\n",
        "labels": ["mlops:train", "model:bc"],
        "channels": {"github": True},
        "dedupe_key": "bc:mon-1:opened",
    }
    return AlertMessage(**{**values, **changes})


def test_slack_and_email_get_the_alert_and_github_a_comment(
    tmp_path: Path, slack: SlackHook, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = Settings(
        home=tmp_path,
        slack_webhook_url=slack.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_sender="mlops@example.com",
    )
    issues = LocalIssueStore(settings)
    issues.create_issue("Train bc", "spec", author="alice")
    dispatcher = AlertDispatcher(settings, issues, backoff_s=0.01)
    channels = {"github": True, "slack": True, "email": ["ml@example.com", "ops@example.com"], "sns": False}

    deliveries = dispatcher.deliver(alert(channels=channels))

    assert [(d.channel, d.delivered, d.attempts) for d in deliveries] == [
        ("github", True, 1),
        ("slack", True, 1),
        ("email", True, 1),
    ]
    assert slack.posts == [{"text": "*[issue-mlops] bc: drift*\nEndpoint bc: 2 feature(s) drifted"}]
    ((recipients, raw),) = inbox.messages
    message = message_from_bytes(raw)
    assert recipients == ["ml@example.com", "ops@example.com"]
    assert message["Subject"] == "[issue-mlops] bc: drift" and message["From"] == "mlops@example.com"
    assert "2 feature(s) drifted" in message.get_payload()
    (comment,) = issues.list_comments(1)
    assert comment.body.startswith("### Monitoring alert: `bc`")
    # the same alert again (a retried state) posts no second comment
    dispatcher.deliver(alert(channels={"github": True}))
    assert len(issues.list_comments(1)) == 1


def test_a_channel_that_is_down_is_retried_then_reported_and_the_others_still_go(
    tmp_path: Path, smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp
    down = SlackHook(statuses=[500, 500, 500, 500])
    try:
        settings = Settings(
            home=tmp_path,
            slack_webhook_url=down.url,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
        )
        dispatcher = AlertDispatcher(settings, LocalIssueStore(settings), attempts=3, backoff_s=0.01)
        deliveries = dispatcher.deliver(
            alert(issue_number=None, channels={"slack": True, "email": ["a@example.com"]})
        )
    finally:
        down.close()
    slack_result, email_result = deliveries
    assert (slack_result.delivered, slack_result.attempts) == (False, 3)
    assert "500" in slack_result.error
    assert len(down.posts) == 3
    assert email_result.delivered and len(inbox.messages) == 1
    assert any("alert to slack failed after 3 attempts" in r.getMessage() for r in caplog.records)


def test_a_flaky_channel_succeeds_on_a_retry(tmp_path: Path) -> None:
    flaky = SlackHook(statuses=[503])
    try:
        settings = Settings(home=tmp_path, slack_webhook_url=flaky.url)
        (result,) = AlertDispatcher(settings, LocalIssueStore(settings), backoff_s=0.01).deliver(
            alert(issue_number=None, channels={"slack": True})
        )
    finally:
        flaky.close()
    assert (result.delivered, result.attempts) == (True, 2)
    assert len(flaky.posts) == 2


def test_an_unconfigured_channel_says_which_setting_to_fill_without_retrying(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    results = AlertDispatcher(settings, LocalIssueStore(settings)).deliver(
        alert(issue_number=None, channels={"slack": True, "email": ["a@example.com"], "sns": True})
    )
    assert [(r.channel, r.delivered, r.attempts) for r in results] == [
        ("slack", False, 0),
        ("email", False, 0),
        ("sns", False, 0),
    ]
    assert "MLOPS_SLACK_WEBHOOK_URL" in results[0].error and "MLOPS_SMTP_HOST" in results[1].error


def test_a_closed_issue_gets_a_new_issue_labelled_for_the_model_with_the_spec(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    issues = LocalIssueStore(settings)
    issues.create_issue("Train bc", "spec", author="alice")
    issues.set_state(1, "closed")
    (result,) = AlertDispatcher(settings, issues).deliver(alert())
    assert result.delivered and result.target == "local://issues/2"
    opened = issues.get_issue(2)
    assert opened.title == "[alert] [issue-mlops] bc: drift"
    assert opened.labels == ["mlops:train", "model:bc"]
    assert "#1, which deployed `bc`, is closed" in opened.body
    assert "```yaml\ntask: classification\n```" in opened.body
    assert issues.list_comments(1) == []
    (notice,) = AlertDispatcher(settings, issues).deliver(alert(kind="resolved"))
    assert notice.delivered and "closed" in notice.target and len(issues.list_issues()) == 2


def test_github_alerts_speak_the_rest_api(tmp_path: Path) -> None:
    fake = FakeGitHub()
    with serve(fake):
        fake.add_issue(7)
        settings = Settings(
            home=tmp_path,
            github_token=TOKEN,
            github_repository=f"{OWNER}/{REPO}",
            github_api_url=fake.base_url,
        )
        issues = GitHubIssueBackend(settings, seconds_between_requests=0, seconds_between_writes=0)
        dispatcher = AlertDispatcher(settings, issues)
        (commented,) = dispatcher.deliver(alert(issue_number=7))
        assert commented.delivered and commented.target.endswith("#issuecomment-9001")
        assert fake.comments[7][0]["body"].startswith("### Monitoring alert")
        fake.issues[7]["state"] = "closed"
        (opened,) = dispatcher.deliver(alert(issue_number=7, dedupe_key="bc:mon-2:opened"))
        created = [s for s in fake.requests("POST") if s.path.endswith("/issues")]
        assert len(created) == 1
        assert created[0].body["labels"] == ["mlops:train", "model:bc"]
        assert "is closed" in created[0].body["body"]
        assert opened.target == "https://github.example/acme/models/issues/8"


def test_sns_alerts_reach_a_subscribed_queue(tmp_path: Path, moto_endpoint: str) -> None:
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    topic = sns.create_topic(Name="mlops-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    settings = Settings(home=tmp_path, backend="aws", sns_topic_arn=topic, aws_endpoint_url=moto_endpoint)
    (result,) = AlertDispatcher(settings, LocalIssueStore(settings), sns_client=sns).deliver(
        alert(issue_number=None, channels={"sns": True})
    )
    assert result.delivered and result.target
    (received,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(received["Body"])
    assert envelope["Subject"] == "[issue-mlops] bc: drift"
    assert envelope["Message"] == "Endpoint bc: 2 feature(s) drifted"
    assert envelope["MessageAttributes"]["endpoint"]["Value"] == "bc"
