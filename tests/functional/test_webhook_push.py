"""The code-change trigger: GitHub ``push`` deliveries, signed, against the real engine.

Two monitored endpoints are watched for code changes (an XGBoost and a PyTorch model) and one
is not. A push is read only when it moves the default branch and touches
``training_containers/``; it then starts one monitoring execution per model whose code it
changed, whose EvaluateAlarms names the ``code_change`` trigger and the paths. The retry
budget of these endpoints is spent, so no retrain starts here (``tests/e2e/test_monitoring.py``
follows a code-change retrain to its end).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import time
import uuid

import pytest

from agents.issue_detector import push_execution_name
from mcp_server.core.models import IssueRef
from mcp_server.core.monitoring.models import MonitoringSchedule, MonitorState
from tests.conftest import load_event

WATCHED = {"push-xgb": "xgboost", "push-torch": "neural_network", "push-unwatched": "xgboost"}


def push(paths: list[str], ref: str = "refs/heads/main") -> dict:
    payload = copy.deepcopy(load_event("push.json"))
    payload["ref"] = ref
    payload["commits"][0]["modified"] = paths
    return payload


@pytest.fixture
def watched(runtime):
    monitoring = runtime.backends.monitoring
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for endpoint, algorithm in WATCHED.items():
        spec = {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": algorithm,
            "retraining": {"max_attempts": 1, "triggers": {"code_change": endpoint != "push-unwatched"}},
        }
        monitoring.put_monitoring_schedule(
            MonitoringSchedule(
                endpoint_name=endpoint,
                model_name=endpoint,
                issue=IssueRef(number=1, title="t", url="local://issues/1", author="alice", repository="r"),
                spec=spec,
                spec_hash="0" * 12,
                triggers=spec["retraining"]["triggers"],
            )
        )
        # the day's budget (max_attempts 1) is spent: the trigger fires, no retrain starts
        gone = runtime.engine.state_machine_arn.replace(":stateMachine:", ":execution:") + ":earlier"
        retrain = {"execution_name": "earlier", "execution_arn": gone, "kind": "drift", "at": now}
        monitoring.save_monitor_state(endpoint, MonitorState(retrains=[retrain]))
    yield monitoring
    for endpoint in WATCHED:
        shutil.rmtree(runtime.settings.home / "monitoring" / endpoint, ignore_errors=True)


def monitoring_executions(runtime) -> int:
    machine = runtime.engine.monitoring_state_machine_arn
    return len(runtime.engine.client().list_executions(stateMachineArn=machine)["executions"])


def wait_done(runtime, arn: str) -> dict:
    client = runtime.engine.client()
    deadline = time.monotonic() + 60
    while (described := client.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    if described["status"] != "SUCCEEDED":  # the failing task's own error says more than the Fail state
        events = client.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
        failed = [e for e in events if "Failed" in e["type"] and e["type"] != "ExecutionFailed"]
        described["cause"] = json.dumps(failed[-1:], default=str)[:3000]
    return described


def test_a_push_changing_a_models_code_starts_its_code_change_monitoring(runtime, watched):
    delivery = str(uuid.uuid4())
    paths = ["training_containers/xgboost/train.py", "README.md"]
    outcome = runtime.deliver("push", push(paths), delivery_id=delivery)
    assert outcome["statusCode"] == 202 and outcome["status"] == "started"
    [started] = outcome["executions"]
    assert started["endpoint_name"] == "push-xgb"
    assert started["execution_name"] == push_execution_name("push-xgb", delivery)
    assert {s["endpoint_name"] for s in outcome["skipped"]} == {"push-torch"}

    described = wait_done(runtime, started["execution_arn"])
    assert described["status"] == "SUCCEEDED", described.get("cause")
    state = json.loads(described["output"])
    assert state["trigger"] == "code_change" and "job" not in state  # no monitoring job for a push
    skipped = state["alarms"]["skipped_retrain"]
    assert skipped.startswith("push 1a2b3c4 to main by octocat changed training_containers/xgboost/train.py")
    assert "README.md" not in skipped and "retraining.max_attempts: 1" in skipped
    assert "retraining" not in state

    again = runtime.deliver("push", push(paths), delivery_id=delivery)
    assert again["statusCode"] == 200 and again["status"] == "duplicate"


def test_shared_code_changes_every_watched_model(runtime, watched):
    outcome = runtime.deliver("push", push(["training_containers/common/metrics.py"]))
    assert outcome["status"] == "started"
    assert sorted(e["endpoint_name"] for e in outcome["executions"]) == ["push-torch", "push-xgb"]
    for execution in outcome["executions"]:
        assert wait_done(runtime, execution["execution_arn"])["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (push(["training_containers/xgboost/train.py"], ref="refs/heads/feature"), "default branch main"),
        (push(["training_containers/xgboost/train.py"], ref="refs/tags/v1"), "default branch main"),
        (push(["README.md", "cdk/app.py"]), "nothing under training_containers/"),
    ],
)
def test_pushes_elsewhere_are_ignored_and_start_nothing(runtime, watched, payload, message):
    before = monitoring_executions(runtime)
    outcome = runtime.deliver("push", payload)
    assert outcome["statusCode"] == 200 and outcome["status"] == "ignored"
    assert message in outcome["message"]
    assert monitoring_executions(runtime) == before


def test_a_push_to_code_no_watched_model_runs_is_recorded_as_ignored(runtime, watched):
    outcome = runtime.deliver("push", push(["training_containers/rl/ppo.py"]))
    assert outcome["statusCode"] == 202 and outcome["status"] == "ignored"
    assert {s["endpoint_name"] for s in outcome["skipped"]} == {"push-xgb", "push-torch"}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("repository"),
        lambda p: p["repository"].pop("default_branch"),
        lambda p: p["commits"][0].update(modified="training_containers/x.py"),
        lambda p: p.update(commits=[{"id": 1}]),
    ],
)
def test_a_push_of_the_wrong_shape_is_a_bad_request(runtime, mutate):
    payload = push(["training_containers/xgboost/train.py"])
    mutate(payload)
    outcome = runtime.deliver("push", payload)
    assert outcome["statusCode"] == 400 and outcome["status"] == "bad_request"
