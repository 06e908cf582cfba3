"""Issues with a deployment section, end to end on a local endpoint: first model, canary, rollback, hold.

One endpoint (``wine``) receives three issues in turn: the first model is deployed directly; a
second, as good, goes through a canary (20 % then 100 %) and is promoted; a third, with a p95
limit no server meets, is rolled back by CheckAlarms; a fourth, worse than the champion, is held
back by the champion/challenger gate. After each, the endpoint is asked what it serves.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from mcp_server.backends.local.endpoints import LocalEndpointBackend
from tests.e2e.test_issue_to_model import closing_comment, run_issue, yaml_issue
from tests.e2e.test_operator_loop import reply

pytestmark = pytest.mark.slow
ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]


def issue_with(deployment: dict[str, Any], **spec: Any) -> str:
    base = {
        "model_name": "wine-served",
        "hyperparameters": {"n_estimators": 30},
        "deployment": {"endpoint_name": "wine", **deployment},
    }
    base.update(spec)
    return yaml_issue(**base)


def invoke(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"instances": [ROW]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def endpoints(runtime):
    backend = LocalEndpointBackend(runtime.settings)
    yield backend
    for endpoint in backend.list_endpoints():
        if endpoint.status != "Stopped":
            backend.delete_endpoint(endpoint.name)


def test_a_first_model_then_a_canary_then_a_rollback_then_a_hold(runtime, endpoints):
    canary = {"strategy": "canary", "canary": {"steps": [20, 100], "interval_s": 1}}

    issue, record = run_issue(runtime, "first", issue_with(canary))
    assert record["status"] == "SUCCEEDED", record.get("error")
    first = endpoints.describe_endpoint("wine")
    assert [(v.name, v.weight) for v in first.variants] == [("v1", 100)]
    assert invoke(first.url)["model_version"] == "1.0.0"
    text = closing_comment(runtime, issue).body
    assert "Deployment: promoted" in text and "Champion/challenger: no champion to compare with" in text

    issue, record = run_issue(runtime, "canary", issue_with(canary))  # the same model: as good
    assert record["status"] == "SUCCEEDED", record.get("error")
    promoted = endpoints.describe_endpoint("wine")
    assert [(v.name, v.weight) for v in promoted.variants] == [("v2", 100)]
    version = promoted.variants[0].model.semantic_version
    assert invoke(promoted.url)["model_version"] == version
    assert [e.action for e in promoted.history][-5:] == ["deploy", "check", "shift", "check", "promote"]
    text = closing_comment(runtime, issue).body
    assert f"Strategy canary: champion `v1`, challenger `v2` ({version})" in text
    assert re.search(r"Step 1 at 20%: \d+ requests, 5xx rate 0\.00%.*passed", text)
    assert "at least as good as the champion's" in text
    versions = runtime.backends.registry
    assert "champion" in versions.set_champion("wine-served", "2").aliases  # already the champion
    [record_file] = (runtime.settings.history_repo_path / "training_history").glob(
        f"*-issue-{issue.number}-*.md"
    )
    markdown = record_file.read_text()
    assert "## Deployment" in markdown and "](file:" not in markdown
    dockerfile = re.search(r"\[Dockerfile\]\((assets/[^)]+/package/Dockerfile)\)", markdown).group(1)
    assert "USER 10001" in (record_file.parent / dockerfile).read_text()

    strict = {**canary, "rollback_on": {"p95_latency_ms": 0.001}}
    issue, record = run_issue(runtime, "too slow", issue_with(strict))
    assert record["status"] == "SUCCEEDED", record.get("error")
    after = endpoints.describe_endpoint("wine")
    assert [(v.name, v.weight) for v in after.variants] == [("v2", 100)]  # the champion serves alone
    assert after.history[-1].action == "rollback"
    assert invoke(after.url)["model_version"] == version
    text = closing_comment(runtime, issue).body
    assert "Deployment: rolled back" in text
    assert "rolled back at 20% of traffic: p95 latency" in text

    worse = issue_with(
        canary,
        hyperparameters={"n_estimators": 1, "max_depth": 1},
        evaluation={"thresholds": {"accuracy": 0.5}},
    )
    issue, record = run_issue(runtime, "worse", worse)
    assert record["status"] == "SUCCEEDED", record.get("error")
    text = closing_comment(runtime, issue).body
    assert "Deployment: held back" in text and "worse than the champion's" in text
    assert "Comment `/deploy` to deploy it anyway." in text
    held = endpoints.describe_endpoint("wine")
    assert [(v.name, v.weight) for v in held.variants] == [("v2", 100)]

    # /deploy overrides the gate: the held-back version goes through the canary and is promoted
    outcome = reply(runtime, issue, "/deploy")
    assert outcome["status"] == "deploying", outcome
    assert runtime.wait(outcome["execution_arn"], timeout_s=300)["status"] == "SUCCEEDED"
    forced = endpoints.describe_endpoint("wine")
    assert [v.name for v in forced.variants] == ["v4"]
    texts = [c.body for c in runtime.backends.issues.list_comments(issue.number)]
    assert any("@bob asked to deploy" in t for t in texts)
    assert any("Deployment: promoted" in t and "at the request of @bob (`/deploy`)" in t for t in texts)
    again = reply(runtime, issue, "/deploy")
    assert again["status"] == "refused"  # nothing is held back any more

    # /rollback returns to the previous champion, and the endpoint's history says who asked
    rolled = reply(runtime, issue, "/rollback")
    assert rolled == {**rolled, "status": "rolled_back", "endpoint": "wine", "version": version}
    history = endpoints.describe_endpoint("wine").history[-1]
    assert (history.action, history.by) == ("rollback", "bob")
    assert invoke(forced.url)["model_version"] == version
    refused = reply(runtime, issue, "/rollback 9.9.9")
    assert refused["status"] == "refused" and "never served version 9.9.9" in refused["message"]


def test_a_deployment_that_cannot_start_fails_the_run_and_names_the_reason(runtime, endpoints):
    blocked = {"strategy": "direct", "endpoint_name": "wine"}
    issue, record = run_issue(
        runtime,
        "other model",
        issue_with(blocked, model_name="wine-other", hyperparameters={"n_estimators": 5}),
    )
    assert record["status"] == "FAILED"
    text = closing_comment(runtime, issue).body
    assert "endpoint wine serves model wine-served, not wine-other" in text
    assert endpoints.describe_endpoint("wine").model_name == "wine-served"
    nothing = reply(runtime, issue, "/rollback")
    assert nothing["status"] == "refused" and "no endpoint was deployed from this issue" in nothing["message"]


def test_ab_keeps_both_variants_with_their_comparison_and_blue_green_switches_fleets(runtime, endpoints):
    ab = {"endpoint_name": "wine-ab", "strategy": "ab", "ab": {"challenger_percent": 30, "interval_s": 1}}
    spec = {"model_name": "wine-ab"}
    _, first = run_issue(runtime, "ab first", issue_with(ab, **spec))
    assert first["status"] == "SUCCEEDED", first.get("error")
    issue, second = run_issue(runtime, "ab second", issue_with(ab, **spec))
    assert second["status"] == "SUCCEEDED", second.get("error")
    both = endpoints.describe_endpoint("wine-ab")
    assert {v.name: v.weight for v in both.variants} == {"v1": 70, "v2": 30}
    assert [e.action for e in both.history][-2:] == ["check", "compare"]
    text = closing_comment(runtime, issue).body
    assert "Deployment: A/B: both variants keep serving" in text
    assert re.search(r"A/B at 30% to the challenger: challenger \d+ requests, error rate 0\.00%", text)

    blue_green = {"endpoint_name": "wine-ab", "strategy": "blue_green", "blue_green": {"interval_s": 1}}
    issue, third = run_issue(runtime, "blue/green", issue_with(blue_green, **spec))
    assert third["status"] == "SUCCEEDED", third.get("error")
    switched = endpoints.describe_endpoint("wine-ab")
    assert [(v.name, v.weight) for v in switched.variants] == [("v3", 100)]
    deploy_event = [e for e in switched.history if e.action == "deploy"][-1]
    assert deploy_event.weights == {"v1": 0, "v3": 100}  # the old fleet kept at 0 during the bake
    assert "Strategy blue_green" in closing_comment(runtime, issue).body
