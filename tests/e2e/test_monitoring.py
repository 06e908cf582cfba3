"""Watch and retrain, end to end: deploy, send shifted traffic, monitor, alert, retrain, resolve.

An issue deploys a wine classifier with a monitoring section, a drift trigger and feedback.
Traffic whose ``alcohol`` is shifted, with inference ids, reaches the endpoint; labels arrive for
some of it. The monitoring workflow then finds the drift, comments on the issue with the report,
and starts a retrain execution that adds the labelled captured rows to the data, goes through the
whole workflow and records its trigger. A second
look finds no new traffic: the drift incident is resolved. With the issue closed and the retry budget
spent, the next drift opens a new issue and starts no retrain.

A second model is trained from a CSV file and watched for data and code changes: rows added to
the file, then a push that changes its algorithm's code, each start a retrain run.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.request
import uuid

import pytest
from sklearn.datasets import load_wine

from mcp_server.backends.local.endpoints import LocalEndpointBackend
from tests.conftest import REPO_ROOT, load_event
from tests.e2e.test_issue_to_model import run_issue, yaml_issue

pytestmark = pytest.mark.slow
ENDPOINT = "wine-watch"


def send(url: str, count: int, shift: float, start: int = 0) -> None:
    """``count`` single-row requests of wine rows with alcohol plus ``shift``, ids ``w-{i}``."""
    data = load_wine()
    for i in range(start, start + count):
        row = data.data[i % len(data.data)].tolist()
        row[0] += shift
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Content-Type": "application/json", "X-Amzn-SageMaker-Inference-Id": f"w-{i}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


def wait_for_capture(runtime, count: int, timeout_s: float = 30) -> None:
    """Until the endpoint's capture holds ``count`` records, then past the current second.

    The capture writer flushes every 0.25 s, and a window ends at a whole second (its end is
    exclusive): a request captured in the window's last second belongs to the next one.
    """
    folder = runtime.settings.home / "capture" / ENDPOINT
    deadline = time.monotonic() + timeout_s
    while sum(len(p.read_text().splitlines()) for p in folder.rglob("*.jsonl")) < count:
        assert time.monotonic() < deadline, "the capture did not catch up"
        time.sleep(0.1)
    time.sleep(1.1)


def comments_after(runtime, number: int, after_id: int) -> list:
    return [c for c in runtime.backends.issues.list_comments(number) if c.id > after_id]


@pytest.fixture(scope="module")
def endpoints(runtime):
    backend = LocalEndpointBackend(runtime.settings)
    yield backend
    for endpoint in backend.list_endpoints():
        if endpoint.status != "Stopped" and endpoint.name == ENDPOINT:
            backend.delete_endpoint(endpoint.name)


def test_drift_alerts_on_the_issue_and_retrains_then_resolves(runtime, endpoints):
    body = yaml_issue(
        model_name="wine-watch",
        hyperparameters={"n_estimators": 30},
        deployment={"endpoint_name": ENDPOINT},
        monitoring={"schedule": "rate(1 hour)", "drift_psi": 0.2, "metric_floor": {"accuracy": 0.95}},
        retraining={"max_attempts": 1, "triggers": {"drift_psi": 0.5}, "feedback": True},
        evaluation={"thresholds": {"accuracy": 0.5}},  # the labelled feedback holds 30 wrong labels
    )
    issue, record = run_issue(runtime, "watched wine", body)
    assert record["status"] == "SUCCEEDED", record.get("cause")
    [on] = [c for c in runtime.backends.issues.list_comments(issue.number) if "Monitoring is on" in c.body]
    assert "Schedule: `rate(1 hour)` (UTC), run by `mlops serve`" in on.body
    assert "Retraining: when a feature's PSI exceeds 0.5" in on.body
    assert "- Feedback: labelled captured requests join the data of the next triggered retrain" in on.body
    schedule = runtime.backends.monitoring.get_monitoring_schedule(ENDPOINT)
    assert schedule.model_version == "1.0.0" and schedule.issue.number == issue.number

    url = endpoints.describe_endpoint(ENDPOINT).url
    endpoints.record_system_metrics()  # what mlops serve's scheduler does at each tick
    injected = time.monotonic()
    send(url, 150, shift=3.0)
    endpoints.record_system_metrics()
    data = load_wine()
    labels = {f"w-{i}": str(data.target[i]) for i in range(60)}
    labels.update({f"w-{i}": str((data.target[i] + 1) % 3) for i in range(60, 90)})  # 30 wrong labels
    labels["w-nobody"] = "0"
    runtime.backends.monitoring.put_ground_truth(ENDPOINT, labels)
    wait_for_capture(runtime, 150)

    last = runtime.backends.issues.list_comments(issue.number)[-1].id
    result = runtime.monitor(ENDPOINT, requested_by="test")
    alerted = time.monotonic() - injected
    assert result["status"] == "SUCCEEDED", (result["error"], result["cause"])
    state = result["output"]
    assert "drift" in state["alarms"]["opened"] and "metric_floor:accuracy" in state["alarms"]["opened"]
    assert state["job"]["rows"] == 150 and state["job"]["drifted_features"][0] == "alcohol"
    [alert, started] = comments_after(runtime, issue.number, last)[:2]
    assert alert.body.startswith(f"### Monitoring alert: `{ENDPOINT}`")
    assert "| alcohol |" in alert.body and "KS" in alert.body
    assert "accuracy" in alert.body and "below its floor 0.95" in alert.body
    assert "1 ground-truth label(s) matched no captured request" in alert.body
    assert "![alcohol: baseline against captured](" in alert.body
    assert "A retrain run starts now (drift trigger)." in alert.body
    assert started.body.startswith("### Retraining started (drift)")
    assert alerted < 60, f"drift to comment took {alerted:.1f} s"
    report = runtime.settings.history_repo_path / "training_history" / "monitoring" / ENDPOINT
    [job_folder] = list(report.iterdir())
    assert (job_folder / "report.md").is_file() and (job_folder / "plots" / "drift_alcohol.png").is_file()
    system = runtime.backends.monitoring.describe_monitoring_job(state["job"]["job_name"]).system
    assert system["requests"] == 150 and system["max_memory_mb"] > 10
    assert "## System metrics (1 sample(s))" in (job_folder / "report.md").read_text()

    retrain = runtime.wait(state["retraining"]["execution_arn"], timeout_s=300)
    assert retrain["status"] == "SUCCEEDED", retrain.get("cause")
    final = retrain["output"]
    assert final["trigger"]["kind"] == "drift" and final["trigger"]["previous_version"] == "1.0.0"
    # feedback: the 90 labelled captured rows (shifted, 30 with a wrong label) joined the data
    assert final["trigger"]["feedback_rows"] == 90
    assert final["dataset"]["rows_feedback"] == 90 and final["dataset"]["rows_raw"] == 178 + 90
    assert final["deployment"]["status"] == "promoted"
    records = sorted(
        (runtime.settings.history_repo_path / "training_history").glob(
            f"*-{state['retraining']['execution_name']}-a1.md"
        )
    )
    text = records[0].read_text()
    assert "## Retraining" in text and "**Retraining (drift trigger)**" in text
    assert "- Version 1.0.0 → " in text and "- Spec: unchanged" in text
    assert (
        f"- Feedback: 90 labelled captured row(s) added to the data, from `{state['job']['job_name']}`"
        in text
    )
    assert "| accuracy |" in text  # champion and challenger side by side on the same split
    assert endpoints.describe_endpoint(ENDPOINT).variants[0].model.semantic_version != "1.0.0"

    # no new traffic: the drift incident is resolved; model quality is graded on every labelled
    # row of the last 7 days, so the accuracy incident stays open (and is not alerted twice)
    last = runtime.backends.issues.list_comments(issue.number)[-1].id
    quiet = runtime.monitor(ENDPOINT)
    assert quiet["status"] == "SUCCEEDED"
    assert quiet["output"]["alarms"]["resolved"] == ["drift"]
    assert quiet["output"]["alarms"]["firing"] == ["metric_floor:accuracy"]
    assert "metric_floor:accuracy" not in quiet["output"]["alarms"]["opened"]
    [resolved] = [c for c in comments_after(runtime, issue.number, last) if c.body.startswith("### Resolved")]
    assert "no longer finds it" in resolved.body
    assert "retraining" not in quiet["output"]

    # the issue is closed and the budget (max_attempts 1 a day) is spent: a new issue, no retrain
    runtime.backends.issues.set_state(issue.number, "closed")
    send(url, 100, shift=3.0, start=1000)
    wait_for_capture(runtime, 250)
    issues_before = len(runtime.backends.issues.list_issues())
    again = runtime.monitor(ENDPOINT)
    assert again["status"] == "SUCCEEDED"
    assert "retraining" not in again["output"]
    assert (
        "still running" in again["output"]["alarms"]["skipped_retrain"]
        or "last 24 hours" in again["output"]["alarms"]["skipped_retrain"]
    )
    new_issues = runtime.backends.issues.list_issues()[issues_before:]
    assert len(new_issues) == 1
    assert new_issues[0].labels == ["mlops:train", "model:wine-watch"]
    assert "is closed" in new_issues[0].body and "monitoring:" in new_issues[0].body
    assert "No retrain starts:" in new_issues[0].body


def test_monitoring_an_endpoint_that_is_not_watched_fails_and_says_why(runtime):
    result = runtime.monitor("not-watched")
    assert result["status"] == "FAILED"
    assert result["error"] == "NotFoundError" and "is not monitored" in result["cause"]


def test_a_data_change_and_a_push_retrain_the_deployed_model(runtime, endpoints):
    """``data_change`` and ``code_change`` triggers, each to a retrain run recorded with its trigger."""
    endpoint = "wine-change"
    data = load_wine(as_frame=True).frame
    csv = REPO_ROOT / "data" / f"e2e-{uuid.uuid4().hex[:8]}.csv"
    csv.parent.mkdir(exist_ok=True)
    data.iloc[:150].to_csv(csv, index=False)
    try:
        body = yaml_issue(
            model_name=endpoint,
            dataset={"source": f"file://data/{csv.name}", "target": "target"},
            hyperparameters={"n_estimators": 20},
            deployment={"endpoint_name": endpoint},
            retraining={"max_attempts": 3, "triggers": {"data_change": True, "code_change": True}},
        )
        issue, record = run_issue(runtime, "changing wine", body)
        assert record["status"] == "SUCCEEDED", record.get("cause")
        [on] = [
            c for c in runtime.backends.issues.list_comments(issue.number) if "Monitoring is on" in c.body
        ]
        assert "when the dataset source changes" in on.body and "`training_containers/`" in on.body

        # nothing changed: no monitoring job (no monitoring section), no retrain
        quiet = runtime.monitor(endpoint)
        assert quiet["status"] == "SUCCEEDED", quiet["cause"]
        assert quiet["output"]["job"]["job_name"] == "" and "retraining" not in quiet["output"]

        # the dataset grows: the data-change trigger retrains on the new rows
        data.to_csv(csv, index=False)
        changed = runtime.monitor(endpoint)
        retraining = changed["output"]["retraining"]
        assert retraining["trigger"]["kind"] == "data_change"
        assert f"the dataset source file://data/{csv.name} changed" in retraining["trigger"]["reason"]
        retrain = runtime.wait(retraining["execution_arn"], timeout_s=300)
        assert retrain["status"] == "SUCCEEDED", retrain.get("cause")
        assert retrain["output"]["trigger"]["kind"] == "data_change"
        assert retrain["output"]["dataset"]["rows_raw"] == len(data)
        grown = retrain["output"]["dataset"]["data_version"]
        text = _record_text(runtime, retraining["execution_name"])
        assert "**Retraining (data change trigger)**" in text and "- Data version: `" in text
        assert "- Spec: unchanged" in text
        # the same version of the data does not fire again, promoted or not
        again = runtime.monitor(endpoint)
        assert "retraining" not in again["output"] and not again["output"]["alarms"]["skipped_retrain"]

        # a push to another family's code retrains nothing; one to the forest's code retrains it
        other = _push(["training_containers/pytorch/train.py"])
        assert runtime.deliver("push", other)["status"] == "ignored"
        pushed = runtime.deliver("push", _push(["training_containers/sklearn/train.py"]))
        [execution] = [e for e in pushed["executions"] if e["endpoint_name"] == endpoint]
        result = runtime.wait_monitoring(execution["execution_arn"], timeout_s=120)
        assert result["status"] == "SUCCEEDED", result["cause"]
        retraining = result["output"]["retraining"]
        assert retraining["trigger"]["kind"] == "code_change"
        assert "changed training_containers/sklearn/train.py" in retraining["trigger"]["reason"]
        started = [
            c for c in runtime.backends.issues.list_comments(issue.number) if "(code change)" in c.body
        ]
        assert started and started[-1].body.startswith("### Retraining started (code change)")
        retrain = runtime.wait(retraining["execution_arn"], timeout_s=300)
        assert retrain["status"] == "SUCCEEDED", retrain.get("cause")
        text = _record_text(runtime, retraining["execution_name"])
        assert "**Retraining (code change trigger)**: push 1a2b3c4 to main by octocat" in text
        # trained on the grown file, whether or not the data-change challenger was promoted
        assert f"`{grown}`" in text.split("- Data version:")[1].splitlines()[0]
    finally:
        csv.unlink(missing_ok=True)
        if endpoint in {e.name for e in endpoints.list_endpoints() if e.status != "Stopped"}:
            endpoints.delete_endpoint(endpoint)


def _push(paths: list[str]) -> dict:
    payload = copy.deepcopy(load_event("push.json"))
    payload["commits"][0]["modified"] = paths
    return payload


def _record_text(runtime, execution_name: str) -> str:
    folder = runtime.settings.history_repo_path / "training_history"
    [record] = sorted(folder.glob(f"*-{execution_name}-a1.md"))
    return record.read_text()
