"""``mlops monitor``, ``mlops feedback`` and ``mlops push`` as a user runs them (real processes), the
labels file's checks, and the local scheduler starting due monitoring executions on the engine."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest

from mcp_server.backends.local.monitoring import LocalMonitoringBackend
from mcp_server.core.models import IssueRef
from mcp_server.core.monitoring.models import MonitoringSchedule, MonitorState
from mcp_server.core.spec.schema import TriggersSpec, validate_spec
from mcp_server.settings import Settings
from statemachine.feedback import captured_ids, read_labels, unknown_ids
from statemachine.scheduler import LocalScheduler
from tests.functional.test_cli_errors import mlops, no_traceback


def test_monitor_of_an_unmonitored_endpoint_names_the_monitored_ones(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    LocalMonitoringBackend(settings).put_monitoring_schedule(schedule("watched"))
    result = mlops(tmp_path, "monitor", "nope")
    assert result.returncode == 1
    text = no_traceback(result)
    assert "endpoint 'nope' is not monitored" in text and "monitored endpoints: watched" in text


def test_feedback_refuses_an_unknown_endpoint_and_a_bad_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n1,a\n")
    result = mlops(tmp_path, "feedback", "nope", str(labels))
    assert result.returncode == 1
    assert "nope" in no_traceback(result)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "id,label\n1,a\n",
            r"needs a header line with the columns inference_id and label \(it has: id, label\)",
        ),
        ("inference_id,label\n", r"has no label rows"),
        ("inference_id,label\nr1,\n", r"line 2: inference_id and label must both be set"),
        ("inference_id,label\nr1," + "x" * 300 + "\n", r"line 2: an id or label is over 256 characters"),
        (b"inference_id,label\nr1,\xff\n", r"is not UTF-8"),
    ],
)
def test_the_labels_file_is_checked_line_by_line(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        read_labels(path)


def test_labels_keep_the_last_of_a_repeated_id_and_unknown_ids_are_found(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("\ufeffinference_id, label ,note\nr1,a,x\nr2,b,\nr1,c,\nreq:1,d,\n")
    labels, duplicates = read_labels(path)
    assert labels == {"r1": "c", "r2": "b", "req:1": "d"} and duplicates == 1
    folder = tmp_path / "capture" / "v1" / "2026" / "12" / "05" / "10"
    folder.mkdir(parents=True)
    lines = [
        {"eventMetadata": {"eventId": "e1", "inferenceId": "r1"}},
        {"eventMetadata": {"eventId": "req"}},
        "not json",
    ]
    (folder / "a.jsonl").write_text("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines))
    known = captured_ids(tmp_path / "capture")
    assert known == {"r1", "req"}
    assert unknown_ids(labels, known) == ["r2"]


def schedule(endpoint: str, **changes: object) -> MonitoringSchedule:
    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": "xgboost",
            "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
            "deployment": {},
            "monitoring": {"schedule": "rate(1 hour)"},
        }
    )
    values = {
        "endpoint_name": endpoint,
        "model_name": endpoint,
        "issue": IssueRef(number=1),
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec.spec_hash(),
        "monitoring": spec.monitoring,
        "created_at": "2026-12-05T10:00:00Z",
    }
    return MonitoringSchedule(**{**values, **changes})  # type: ignore[arg-type]


def test_the_scheduler_starts_each_due_run_once(tmp_path: Path, moto_endpoint: str) -> None:
    monitoring = LocalMonitoringBackend(Settings(home=tmp_path))
    monitoring.put_monitoring_schedule(schedule("bc"))
    monitoring.put_monitoring_schedule(schedule("quiet", created_at="2026-12-05T10:30:00Z"))
    client = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=moto_endpoint)
    machine = client.create_state_machine(
        name="scheduled-monitoring",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/mlops-workflow",
    )["stateMachineArn"]
    scheduler = LocalScheduler(monitoring, client, machine)

    def started() -> dict[str, dict[str, str]]:
        listed = client.list_executions(stateMachineArn=machine)["executions"]
        return {
            e["name"]: json.loads(client.describe_execution(executionArn=e["executionArn"])["input"])
            for e in listed
        }

    at = dt.datetime(2026, 12, 5, 11, 10, tzinfo=dt.UTC)
    assert len(scheduler.tick(at)) == 1
    assert scheduler.tick(at) == []  # the same due run is not started twice
    assert started() == {"monitor-bc-20261205110000": {"endpoint_name": "bc"}}
    monitoring.save_monitor_state("bc", MonitorState(last_until="2026-12-05T11:00:05Z"))
    assert len(scheduler.tick(dt.datetime(2026, 12, 5, 12, 1, tzinfo=dt.UTC))) == 2
    assert set(started()) == {
        "monitor-bc-20261205110000",
        "monitor-bc-20261205120005",
        "monitor-quiet-20261205113000",
    }


def _git(folder: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_push_delivers_the_checkouts_last_commit_and_names_what_it_retrains(tmp_path: Path) -> None:
    checkout, home = tmp_path / "fork", tmp_path / "home"
    (checkout / "training_containers" / "sklearn").mkdir(parents=True)
    (checkout / "README.md").write_text("# fork\n")
    _git(checkout, "init", "-q", "-b", "main")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "-qm", "first")
    (checkout / "training_containers" / "sklearn" / "train.py").write_text("# a better forest\n")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "-qm", "sklearn: a better forest")
    monitoring = LocalMonitoringBackend(Settings(home=home))
    gone = "arn:aws:states:us-east-1:123456789012:execution:mlops-workflow:earlier"
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for endpoint, algorithm in (("forest", "random_forest"), ("boosted", "xgboost")):
        spec = {"algorithm": algorithm, "retraining": {"max_attempts": 1}}
        monitoring.put_monitoring_schedule(
            schedule(endpoint, spec=spec, triggers=TriggersSpec(code_change=True))
        )
        retrain = {"execution_name": "earlier", "execution_arn": gone, "kind": "drift", "at": now}
        monitoring.save_monitor_state(endpoint, MonitorState(retrains=[retrain]))  # the budget is spent

    result = mlops(home, "push", cwd=checkout)

    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, text
    assert "Push " in text and "to main: 1 commit(s), 1 path(s)" in text
    assert "Webhook answered 202 started" in text
    assert "boosted: not retrained (the push does not touch its model's code)" in text
    assert "forest: no retrain: push " in text and "changed training_containers/sklearn/train.py" in text
    assert "retraining.max_attempts: 1" in text

    bad = mlops(home, "push", "--before", "no-such-commit", cwd=checkout)
    assert bad.returncode == 1 and "no-such-commit" in no_traceback(bad)
