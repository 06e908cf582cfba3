"""The webhook handler with signed deliveries in the shape GitHub sends, against the real engine."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from agents.issue_detector import execution_name, sign, verify_signature
from statemachine.webhooks import api_gateway_event, read_issue_file
from tests.conftest import EXAMPLES, executions, load_event, open_issue, wait_quiet


def labeled(issue, body: str, association: str = "MEMBER") -> dict:
    payload = copy.deepcopy(load_event("issues-labeled.json"))
    payload["issue"].update(number=issue.number, body=body, author_association=association)
    return payload


def comments(runtime, number: int) -> list:
    return runtime.backends.issues.list_comments(number)


def test_signature_helpers_match_githubs_scheme():
    # Example from GitHub's docs ("Validating webhook deliveries"): secret "It's a Secret to Everybody".
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(b"It's a Secret to Everybody", body) == expected
    assert verify_signature(b"It's a Secret to Everybody", body, expected)
    assert not verify_signature(b"another secret", body, expected)
    assert not verify_signature(b"It's a Secret to Everybody", body, None)
    assert not verify_signature(b"It's a Secret to Everybody", body, "sha1=" + expected[7:])


def test_ping_is_answered(runtime):
    response = runtime.deliver("ping", load_event("ping.json"))
    assert response == {"statusCode": 200, "status": "pong"}


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, "", "sha256=deadbeef"])
def test_forged_or_missing_signature_is_refused_before_parsing(runtime, signature):
    issue = open_issue(runtime, "breast-cancer-xgboost.md")
    before = len(executions(runtime))
    event = api_gateway_event(
        runtime.secret, "issues", labeled(issue, "not even checked"), signature=signature
    )
    if not signature:
        del event["headers"]["X-Hub-Signature-256"]
    response = runtime.handle(event)
    assert response["statusCode"] == 401
    assert len(executions(runtime)) == before
    assert comments(runtime, issue.number) == []


def test_body_changed_after_signing_is_refused(runtime):
    issue = open_issue(runtime, "breast-cancer-xgboost.md")
    event = api_gateway_event(runtime.secret, "issues", labeled(issue, "body"))
    event["body"] = event["body"].replace('"MEMBER"', '"OWNER"')
    assert runtime.handle(event)["statusCode"] == 401


def test_unparseable_body_with_valid_signature_is_a_bad_request(runtime):
    event = api_gateway_event(runtime.secret, "issues", {})
    event["body"] = "{not json"
    event["headers"]["X-Hub-Signature-256"] = sign(runtime.secret, b"{not json")
    assert runtime.handle(event)["statusCode"] == 400


def test_other_labels_and_events_are_ignored(runtime):
    issue = open_issue(runtime, "breast-cancer-xgboost.md")
    before = len(executions(runtime))
    other_label = labeled(issue, "x")
    other_label["label"] = {"name": "bug"}
    assert runtime.deliver("issues", other_label)["status"] == "ignored"
    closed = labeled(issue, "x")
    closed["action"] = "closed"
    assert runtime.deliver("issues", closed)["status"] == "ignored"
    unlabelled = labeled(issue, "x")
    unlabelled["action"], unlabelled["issue"]["labels"] = "opened", []
    assert runtime.deliver("issues", unlabelled)["status"] == "ignored"
    assert runtime.deliver("pull_request", {"action": "opened"})["status"] == "ignored"
    assert len(executions(runtime)) == before


def test_unauthorised_author_gets_a_comment_and_no_run(runtime):
    issue = open_issue(runtime, "breast-cancer-xgboost.md")
    before = len(executions(runtime))
    response = runtime.deliver("issues", labeled(issue, issue_body(), association="CONTRIBUTOR"))
    assert response["status"] == "refused"
    assert len(executions(runtime)) == before
    [comment] = comments(runtime, issue.number)
    assert "CONTRIBUTOR" in comment.body and "COLLABORATOR, MEMBER, OWNER" in comment.body


def test_invalid_spec_gets_one_comment_with_every_error_and_no_run(runtime):
    issue = open_issue(runtime, "invalid-spec.md")
    _, body = read_issue_file(EXAMPLES / "invalid-spec.md")
    before = len(executions(runtime))
    response = runtime.deliver("issues", labeled(issue, body))
    assert response["status"] == "invalid_spec"
    errors = response["errors"]
    assert len(errors) >= 6
    assert len(executions(runtime)) == before
    [comment] = comments(runtime, issue.number)
    rows = [line for line in comment.body.splitlines() if line.startswith("| `")]
    assert len(rows) == len(errors)
    assert f"has {len(errors)} errors" in comment.body


def issue_body() -> str:
    return read_issue_file(EXAMPLES / "breast-cancer-xgboost.md")[1]


def test_valid_issue_starts_one_execution_and_redelivery_starts_none(runtime):
    issue = open_issue(runtime, "breast-cancer-xgboost.md")
    delivery = str(uuid.uuid4())
    first = runtime.deliver("issues", labeled(issue, issue_body()), delivery_id=delivery)
    assert first["status"] == "started"
    assert first["execution_name"] == execution_name(issue.number, delivery)
    again = runtime.deliver("issues", labeled(issue, issue_body()), delivery_id=delivery)
    assert again["status"] == "duplicate"
    named = [e for e in executions(runtime) if e["name"] == first["execution_name"]]
    assert len(named) == 1
    described = runtime.engine.client().describe_execution(executionArn=first["execution_arn"])
    execution_input = json.loads(described["input"])
    assert execution_input["spec"]["algorithm"] == "xgboost"
    assert execution_input["issue"]["number"] == issue.number
    assert execution_input["attempt"] == 1
    record = runtime.wait(first["execution_arn"], timeout_s=300)
    assert record["status"] == "SUCCEEDED"
    third = runtime.deliver("issues", labeled(issue, issue_body()), delivery_id=delivery)
    assert third["status"] == "duplicate"
    wait_quiet(runtime)


def test_execution_names_follow_step_functions_rules():
    name = execution_name(12, "72d0e8a4-5c9c-11ef-8f2a-1f2e3d4c5b6a")
    assert name == "issue-12-72d0e8a4-5c9c-11ef-8f2a-1f2e3d4c5b6a"
    assert len(execution_name(1, "x" * 200)) == 80
    assert execution_name(3, "a b/c") == "issue-3-a-b-c"
