"""The waiting-run store and the notification backend, local and AWS, behind the same interfaces.

The AWS implementations run against a real moto server over HTTP: DynamoDB for waiting runs,
SNS (delivering to an SQS queue) for notifications. The same behavioural tests run on the
local store, so both backends keep one contract.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from mcp_server.backends.aws.notification import SnsNotificationBackend, fit_message, message_attributes
from mcp_server.backends.aws.waiting import DynamoDbWaitingRunStore, table_definition
from mcp_server.backends.base import WaitingRunStore
from mcp_server.backends.local.waiting import LocalWaitingRunStore
from mcp_server.core.models import WaitingRun
from mcp_server.errors import MlopsError, NotFoundError, NotificationError, TransientError
from mcp_server.settings import Settings


def aws_settings(endpoint: str, **extra: Any) -> Settings:
    return Settings(home=Path("/nonexistent"), backend="aws", aws_endpoint_url=endpoint, **extra)


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


def waiting_run(run_id: str, issue: int, since: str, **extra: Any) -> WaitingRun:
    values: dict[str, Any] = {
        "run_id": run_id,
        "issue_number": issue,
        "execution_arn": f"arn:aws:states:us-east-1:123456789012:execution:mlops:{run_id}",
        "task_token": "AAAAKgAAAAIAAAAAAAAAA" + "x" * 600,
        "attempt": 1,
        "max_attempts": 3,
        "state": {"issue": {"number": issue}, "verdict": {"verdict": "reject"}, "blob": "é" * 2000},
        "waiting_since": since,
        "timeout_at": "2026-12-09T00:00:00Z",
    }
    values.update(extra)
    return WaitingRun(**values)


@pytest.fixture(params=["local", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> WaitingRunStore:
    if request.param == "local":
        return LocalWaitingRunStore(Settings(home=tmp_path))
    name = f"mlops-state-{tmp_path.name}"[:255]
    client(moto_endpoint, "dynamodb").create_table(**table_definition(name))
    return DynamoDbWaitingRunStore(aws_settings(moto_endpoint, state_table=name))


def test_a_waiting_run_is_saved_read_replaced_and_removed(store: WaitingRunStore) -> None:
    run = waiting_run("issue-12-abc", 12, "2026-12-02T10:00:00Z")

    assert store.save(run) == run
    assert store.get("issue-12-abc") == run
    moved = run.model_copy(update={"task_token": "second-token", "resumes": 1})
    store.save(moved)
    assert store.get("issue-12-abc").task_token == "second-token"
    assert [r.run_id for r in store.list()] == ["issue-12-abc"]
    assert store.remove("issue-12-abc") is True
    assert store.remove("issue-12-abc") is False
    with pytest.raises(NotFoundError, match="no run 'issue-12-abc' is waiting"):
        store.get("issue-12-abc")
    assert store.list() == []


def test_waiting_runs_are_listed_oldest_first_and_by_issue(store: WaitingRunStore) -> None:
    store.save(waiting_run("c", 7, "2026-12-02T12:00:00Z"))
    store.save(waiting_run("a", 5, "2026-12-02T10:00:00Z"))
    store.save(waiting_run("b", 7, "2026-12-02T11:00:00Z"))

    assert [r.run_id for r in store.list()] == ["a", "b", "c"]
    assert [r.run_id for r in store.list(issue_number=7)] == ["b", "c"]
    assert store.list(issue_number=99) == []


def test_the_dynamodb_item_has_the_documented_layout(moto_endpoint: str, tmp_path: Path) -> None:
    dynamodb = client(moto_endpoint, "dynamodb")
    dynamodb.create_table(**table_definition("mlops-layout"))
    store = DynamoDbWaitingRunStore(aws_settings(moto_endpoint, state_table="mlops-layout"))
    run = waiting_run("issue-3-x", 3, "2026-12-02T09:00:00Z")
    store.save(run)

    item = dynamodb.get_item(TableName="mlops-layout", Key={"pk": {"S": "waiting#issue-3-x"}})["Item"]

    assert item["kind"] == {"S": "waiting"}
    assert item["waiting_since"] == {"S": "2026-12-02T09:00:00Z"}
    assert item["issue_number"] == {"N": "3"}
    assert WaitingRun.model_validate_json(item["run"]["S"]) == run
    dynamodb.put_item(TableName="mlops-layout", Item={**item, "run": {"S": "{not json"}})
    with pytest.raises(MlopsError, match="'waiting#issue-3-x' is not a waiting run"):
        store.get("issue-3-x")


def test_a_missing_table_or_setting_is_a_clear_error(moto_endpoint: str) -> None:
    store = DynamoDbWaitingRunStore(aws_settings(moto_endpoint, state_table="no-such-table"))
    with pytest.raises(
        MlopsError, match=r"in table no-such-table: DynamoDB refused it \(ResourceNotFoundException"
    ):
        store.save(waiting_run("r", 1, "2026-12-02T09:00:00Z"))
    with pytest.raises(MlopsError, match="set MLOPS_STATE_TABLE"):
        DynamoDbWaitingRunStore(aws_settings(moto_endpoint))


@pytest.fixture
def topic(moto_endpoint: str) -> Iterator[tuple[str, str]]:
    """An SNS topic with an SQS queue subscribed to it (raw delivery off: SNS's JSON envelope)."""
    sns, sqs = client(moto_endpoint, "sns"), client(moto_endpoint, "sqs")
    arn = sns.create_topic(Name="mlops-runs")["TopicArn"]
    queue = sqs.create_queue(QueueName="mlops-runs-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    yield arn, queue
    sns.delete_topic(TopicArn=arn)
    sqs.delete_queue(QueueUrl=queue)


def test_a_notification_reaches_the_topics_subscribers(moto_endpoint: str, topic: tuple[str, str]) -> None:
    arn, queue = topic
    backend = SnsNotificationBackend(aws_settings(moto_endpoint, sns_topic_arn=arn))

    receipt = backend.notify(
        "Issue #12: model rejected\nafter 3 attempts " + "x" * 200,
        "accuracy 0.81 < 0.9",
        {"issue": "12", "status": "rejected"},
    )

    [message] = client(moto_endpoint, "sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    envelope = json.loads(message["Body"])
    assert receipt.topic == arn
    assert envelope["MessageId"] == receipt.message_id
    assert envelope["TopicArn"] == arn
    assert envelope["Message"] == "accuracy 0.81 < 0.9"
    assert envelope["Subject"].startswith("Issue #12: model rejected after 3 attempts")
    assert len(envelope["Subject"]) == 100 and envelope["Subject"].endswith("…")
    assert envelope["MessageAttributes"] == {
        "issue": {"Type": "String", "Value": "12"},
        "status": {"Type": "String", "Value": "rejected"},
    }


def test_refused_and_unconfigured_notifications_are_clear_errors(moto_endpoint: str) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    with pytest.raises(NotificationError, match=r"publish to .*no-such-topic: SNS refused it \(NotFound"):
        SnsNotificationBackend(aws_settings(moto_endpoint, sns_topic_arn=missing)).notify("s", "m", {})
    with pytest.raises(NotificationError, match="set MLOPS_SNS_TOPIC_ARN"):
        SnsNotificationBackend(aws_settings(moto_endpoint))
    with pytest.raises(NotificationError, match="not allowed by SNS"):
        message_attributes({"AWS.reserved": "x"})
    with pytest.raises(NotificationError, match="at most 10"):
        message_attributes({f"a{n}": "x" for n in range(11)})


def test_a_message_over_the_sns_limit_is_cut_on_a_character_boundary() -> None:
    long = "é" * 200_000  # 400,000 bytes of UTF-8
    cut = fit_message(long)
    assert len(cut.encode("utf-8")) <= 262_144 - 16_384
    assert cut.endswith("[message cut to fit SNS's 256 KiB limit]")
    assert cut.startswith("é" * 1000)
    assert fit_message("short") == "short"


class Throttling(BaseHTTPRequestHandler):
    """Answers every SNS request as a throttled SNS does (the query protocol's XML error)."""

    seen = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen += 1
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        )
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_throttling_is_retried_with_backoff_then_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    sns = boto3.client(
        "sns",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    backend = SnsNotificationBackend(
        aws_settings(url, sns_topic_arn="arn:aws:sns:us-east-1:1:t"), sns_client=sns
    )
    try:
        with pytest.raises(
            TransientError, match=r"SNS is throttling or unavailable \(Throttling: Rate exceeded\)"
        ):
            backend.notify("s", "m", {})
    finally:
        server.shutdown()
        server.server_close()
    assert Throttling.seen > 1  # botocore retried with backoff before giving up


def test_the_factory_builds_every_aws_backend_and_names_a_missing_setting(tmp_path: Path) -> None:
    from mcp_server.backends.aws.data import S3DatasetBackend
    from mcp_server.backends.aws.deliveries import DynamoDbDeliveryStore
    from mcp_server.backends.aws.evaluation import SageMakerEvaluationBackend
    from mcp_server.backends.aws.registry import SageMakerRegistryBackend
    from mcp_server.backends.factory import build_backends
    from mcp_server.backends.github.history import GitHubHistoryBackend
    from mcp_server.backends.github.issues import GitHubIssueBackend

    complete = Settings(
        home=tmp_path,
        backend="aws",
        s3_bucket="b",
        state_table="t",
        sns_topic_arn="arn:aws:sns:us-east-1:1:t",
        github_token="ghp_x",
        github_repository="acme/models",
    )
    backends = build_backends(complete, tmp_path)
    assert isinstance(backends.data, S3DatasetBackend)
    assert isinstance(backends.evaluation, SageMakerEvaluationBackend)
    assert isinstance(backends.registry, SageMakerRegistryBackend)
    assert isinstance(backends.deliveries, DynamoDbDeliveryStore)
    assert isinstance(backends.issues, GitHubIssueBackend)
    assert isinstance(backends.history, GitHubHistoryBackend)
    assert list(tmp_path.iterdir()) == []  # nothing local is written

    with pytest.raises(MlopsError, match="set GITHUB_REPOSITORY=owner/name and the token"):
        build_backends(dataclasses.replace(complete, github_token=None), tmp_path)
    with pytest.raises(MlopsError, match="set MLOPS_BUCKET"):
        build_backends(dataclasses.replace(complete, s3_bucket=None), tmp_path)
    with pytest.raises(MlopsError, match="set MLOPS_STATE_TABLE"):
        build_backends(dataclasses.replace(complete, state_table=None), tmp_path)


def test_secrets_are_read_once_at_start_and_a_missing_one_says_how_to_set_it(moto_endpoint: str) -> None:
    from mcp_server.secrets import MissingSecretError, load_secrets

    secrets = client(moto_endpoint, "secretsmanager")
    token = secrets.create_secret(Name="mlops/github-token", SecretString="ghp_real_token")["ARN"]
    placeholder = secrets.create_secret(
        Name="mlops/unset", SecretString="REPLACE_ME: put a GitHub token here"
    )["ARN"]
    webhook = secrets.create_secret(Name="mlops/webhook-secret", SecretString="s3cr3t-from-github")["ARN"]
    environ = {
        "MLOPS_GITHUB_TOKEN_SECRET_ARN": token,
        "MLOPS_WEBHOOK_SECRET_ARN": webhook,
        "MLOPS_AWS_ENDPOINT_URL": moto_endpoint,
    }

    assert load_secrets(environ) == ["GITHUB_TOKEN", "MLOPS_WEBHOOK_SECRET"]
    assert environ["GITHUB_TOKEN"] == "ghp_real_token"
    assert environ["MLOPS_WEBHOOK_SECRET"] == "s3cr3t-from-github"
    assert load_secrets(environ) == []  # already set: nothing read again

    unset = {"MLOPS_GITHUB_TOKEN_SECRET_ARN": placeholder, "MLOPS_AWS_ENDPOINT_URL": moto_endpoint}
    with pytest.raises(
        MissingSecretError, match=r"mlops/unset.* has not been set; set it with: aws secretsmanager"
    ):
        load_secrets(unset)
    missing_arn = token.replace("github-token", "nothing-here")
    gone = {"MLOPS_GITHUB_TOKEN_SECRET_ARN": missing_arn, "MLOPS_AWS_ENDPOINT_URL": moto_endpoint}
    with pytest.raises(MissingSecretError, match="cannot read the secret .*nothing-here.* for GITHUB_TOKEN"):
        load_secrets(gone)
    assert "GITHUB_TOKEN" not in gone
    assert load_secrets({}) == []  # local mode: no ARNs, nothing to read


class Clock:
    """Seconds since the epoch that a test moves forward."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def delivery(delivery_id: str, received_at: str, **extra: Any) -> Any:
    from mcp_server.core.models import Delivery

    payload = {"action": "labeled", "issue": {"number": 12}}
    return Delivery(
        delivery_id=delivery_id, event="issues", payload=payload, received_at=received_at, **extra
    )


@pytest.fixture(params=["local", "dynamodb"])
def deliveries(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> Any:
    from mcp_server.backends.aws.deliveries import DynamoDbDeliveryStore
    from mcp_server.backends.local.deliveries import LocalDeliveryStore

    if request.param == "local":
        return LocalDeliveryStore(Settings(home=tmp_path))
    name = f"mlops-deliveries-{tmp_path.name}"[:255]
    client(moto_endpoint, "dynamodb").create_table(**table_definition(name))
    return DynamoDbDeliveryStore(aws_settings(moto_endpoint, state_table=name), clock=Clock())


def test_a_delivery_is_claimed_once_taken_once_and_finished(deliveries: Any) -> None:
    first = delivery("d-1", "2026-12-02T10:00:00Z")

    assert deliveries.claim(first) is True
    assert deliveries.claim(delivery("d-1", "2026-12-02T10:00:05Z")) is False  # a redelivery
    assert deliveries.get("d-1") == first
    assert deliveries.pending() == ["d-1"]
    taken = deliveries.take("d-1", "runtime-a")
    assert taken is not None and (taken.status, taken.runtime_id) == ("processing", "runtime-a")
    released = deliveries.release("d-1", {"status": "engine_stopping"})
    assert (released.status, released.attempts, released.outcome) == (
        "received",
        1,
        {"status": "engine_stopping"},
    )
    assert deliveries.take("d-1", "runtime-b") is not None
    done = deliveries.finish("d-1", {"status": "started", "execution": "issue-12-d-1"})
    assert (done.status, done.attempts) == ("done", 2)
    assert deliveries.get("d-1").outcome == {"status": "started", "execution": "issue-12-d-1"}
    assert deliveries.take("d-1", "runtime-c") is None  # done: nothing more to do
    assert deliveries.pending() == []
    with pytest.raises(NotFoundError):
        deliveries.get("never-received")
    with pytest.raises(NotFoundError):
        deliveries.finish("never-received", {})
    assert deliveries.take("never-received", "runtime-a") is None


def test_pending_deliveries_are_listed_oldest_first(deliveries: Any) -> None:
    deliveries.claim(delivery("late", "2026-12-02T12:00:00Z"))
    deliveries.claim(delivery("early", "2026-12-02T09:00:00Z"))
    deliveries.claim(delivery("middle", "2026-12-02T10:30:00Z"))
    deliveries.finish("middle", {"status": "ignored"})

    assert deliveries.pending() == ["early", "late"]


def test_a_dynamodb_delivery_is_held_for_a_lease_then_taken_again(moto_endpoint: str) -> None:
    from mcp_server.backends.aws.deliveries import LEASE_S, DynamoDbDeliveryStore

    client(moto_endpoint, "dynamodb").create_table(**table_definition("mlops-leases"))
    clock = Clock()
    store = DynamoDbDeliveryStore(aws_settings(moto_endpoint, state_table="mlops-leases"), clock=clock)
    store.claim(delivery("d-9", "2026-12-02T10:00:00Z"))
    assert store.take("d-9", "lambda-1") is not None

    assert store.take("d-9", "lambda-2") is None  # held by the first taker's lease
    assert store.pending() == []
    clock.now += LEASE_S + 1  # the first taker died without finishing
    assert store.pending() == ["d-9"]
    again = store.take("d-9", "lambda-2")
    assert again is not None and again.runtime_id == "lambda-2"
    assert store.claim(delivery("d-10", "2026-12-02T10:01:00Z", status="processing", runtime_id="lambda-3"))
    assert store.take("d-10", "lambda-4") is None  # claimed and taken in one step by its receiver


def test_concurrent_takers_get_a_delivery_once(moto_endpoint: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mcp_server.backends.aws.deliveries import DynamoDbDeliveryStore

    client(moto_endpoint, "dynamodb").create_table(**table_definition("mlops-race"))
    settings = aws_settings(moto_endpoint, state_table="mlops-race")
    DynamoDbDeliveryStore(settings).claim(delivery("d-race", "2026-12-02T10:00:00Z"))

    def take(n: int) -> Any:
        return DynamoDbDeliveryStore(settings, dynamodb_client=client(moto_endpoint, "dynamodb")).take(
            "d-race", f"r{n}"
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = [t for t in pool.map(take, range(8)) if t is not None]

    assert len(taken) == 1
