"""The webhook Lambda's entry point (``agents.issue_detector.handler``) as API Gateway calls it on AWS.

Configured the way the CDK stack configures it: the webhook secret read from Secrets Manager
at cold start, deliveries in the DynamoDB state table, executions started on Step Functions,
all on a moto server. The spec is valid, so the webhook posts no comment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from agents import issue_detector
from mcp_server.backends.aws.waiting import table_definition
from statemachine.webhooks import api_gateway_event, issue_payload, read_issue_file
from tests.conftest import EXAMPLES

SECRET = "webhook-secret-in-secrets-manager"


@pytest.fixture
def lambda_environment(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    def client(service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=moto_endpoint)

    secret_arn = client("secretsmanager").create_secret(
        Name="mlops/webhook-secret-lambda", SecretString=SECRET
    )["ARN"]
    client("dynamodb").create_table(**table_definition("mlops-state-lambda"))
    machine = client("stepfunctions").create_state_machine(
        name="mlops-runs-lambda",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    for name, value in {
        "MLOPS_BACKEND": "aws",
        "MLOPS_STATE_TABLE": "mlops-state-lambda",
        "MLOPS_WEBHOOK_SECRET_ARN": secret_arn,
        "MLOPS_STATE_MACHINE_ARN": machine,
        "MLOPS_SFN_ENDPOINT_URL": moto_endpoint,
        "MLOPS_AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLOPS_WEBHOOK_SECRET", raising=False)
    issue_detector._default_detector.cache_clear()
    yield {"machine": machine, "sfn": client("stepfunctions"), "dynamodb": client("dynamodb")}
    issue_detector._default_detector.cache_clear()


def test_the_lambda_entry_point_starts_one_execution_per_delivery(lambda_environment: dict[str, Any]) -> None:
    title, body = read_issue_file(EXAMPLES / "wine-logistic-regression.md")
    payload = issue_payload(12, title, body, "alice", "OWNER", repository="acme/models")
    event = api_gateway_event(SECRET.encode(), "issues", payload, delivery_id="delivery-lambda-1")

    answer = issue_detector.handler(event, None)
    again = issue_detector.handler(event, None)  # GitHub's redelivery of the same id
    forged = issue_detector.handler(api_gateway_event(b"not-the-secret", "issues", payload), None)

    assert answer["statusCode"] == 202, answer
    outcome = json.loads(answer["body"])
    assert outcome["status"] == "started"
    assert outcome["execution_name"] == "issue-12-delivery-lambda-1"
    executions = lambda_environment["sfn"].list_executions(stateMachineArn=lambda_environment["machine"])
    assert [e["name"] for e in executions["executions"]] == ["issue-12-delivery-lambda-1"]
    described = lambda_environment["sfn"].describe_execution(executionArn=outcome["execution_arn"])
    started_with = json.loads(described["input"])
    assert started_with["spec"]["algorithm"] == "logistic_regression"
    assert started_with["trigger"]["delivery_id"] == "delivery-lambda-1"
    assert (again["statusCode"], json.loads(again["body"])["status"]) == (200, "duplicate")
    assert forged["statusCode"] == 401
    item = lambda_environment["dynamodb"].get_item(
        TableName="mlops-state-lambda", Key={"pk": {"S": "delivery#delivery-lambda-1"}}
    )["Item"]
    assert item["status"] == {"S": "done"}
    assert json.loads(item["delivery"]["S"])["outcome"]["status"] == "started"
