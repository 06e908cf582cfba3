"""The execution reporter's AWS entry: EventBridge's status change read into an ``ExecutionEnded``.

On AWS an EventBridge rule sends "Step Functions Execution Status Change" events (FAILED,
TIMED_OUT, ABORTED) to the reporter; the state the execution ended in and its last state output
come from the execution's history. Here the execution really runs on moto's Step Functions.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import httpx

from agents.execution_reporter import STATUS_CHANGE, from_status_change

DEFINITION = {
    "StartAt": "PrepareData",
    "States": {
        "PrepareData": {
            "Type": "Pass",
            "Result": {"number": 7, "title": "t"},
            "ResultPath": "$.issue",
            "Next": "Boom",
        },
        "Boom": {
            "Type": "Fail",
            "Error": "PrepareFailed",
            "Cause": "the dataset could not be read",
        },
    },
}


def status_change(described: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge delivers for an execution, built from DescribeExecution's fields."""
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-02T10:00:00Z",
        "region": "us-east-1",
        "resources": [described["executionArn"]],
        "detail": {
            "executionArn": described["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": described["status"],
            "startDate": 1764669600000,
            "stopDate": 1764669601000,
            "input": described.get("input"),
            "output": None,
            "error": described.get("error"),
            "cause": described.get("cause"),
        },
    }


def test_a_failed_execution_is_read_with_its_last_state_and_output(moto_endpoint: str) -> None:
    httpx.post(
        f"{moto_endpoint}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
    ).raise_for_status()
    sfn = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=moto_endpoint)
    machine = sfn.create_state_machine(
        name="reporter-status-change",
        definition=json.dumps(DEFINITION),
        roleArn="arn:aws:iam::123456789012:role/r",
    )["stateMachineArn"]
    arn = sfn.start_execution(
        stateMachineArn=machine, name="issue-7-abc", input=json.dumps({"spec": {"task": "x"}})
    )["executionArn"]
    deadline = time.monotonic() + 10
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    ended = from_status_change(status_change(described), sfn)

    assert (ended.name, ended.status) == ("issue-7-abc", "FAILED")
    assert ended.error == "PrepareFailed"
    assert ended.cause == "the dataset could not be read"
    assert ended.last_state == "Boom"
    assert ended.last_data == {"spec": {"task": "x"}, "issue": {"number": 7, "title": "t"}}
    assert ended.input == {"spec": {"task": "x"}}
