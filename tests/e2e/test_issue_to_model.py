"""A Markdown issue, end to end: webhook, workflow, registry, history commit and comment."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from mcp_server.backends.local.mlflow_store import open_client
from mcp_server.core.rendering.history_markdown import front_matter
from statemachine.webhooks import issue_payload, read_issue_file
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


def run_issue(runtime, title: str, body: str) -> tuple[object, dict]:
    issue = runtime.backends.issues.create_issue(
        title=title, body=body, author="alice", labels=["mlops:train"]
    )
    response = runtime.deliver("issues", issue_payload(issue.number, title, body, "alice", "OWNER"))
    assert response["status"] == "started", response
    return issue, runtime.wait(response["execution_arn"], timeout_s=300)


def closing_comment(runtime, issue):
    """The run's closing comment; besides it the run keeps exactly one status comment."""
    comments = runtime.backends.issues.list_comments(issue.number)
    status = [c for c in comments if "issue-mlops:status:" in c.body]
    others = [c for c in comments if c not in status]
    assert len(status) == 1
    assert "finished" in status[0].body
    assert len(others) == 1
    return others[0]


def git(runtime, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(runtime.settings.history_repo_path), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def yaml_issue(**overrides) -> str:
    spec = {
        "model_type": "supervised_learning",
        "task": "classification",
        "algorithm": "random_forest",
        "dataset": {"source": "sklearn://wine", "target": "target"},
        "hyperparameters": {"n_estimators": 50},
        "evaluation": {"thresholds": {"accuracy": 0.8}},
    }
    spec.update(overrides)
    return "Please train this.\n\n```yaml\n" + yaml.safe_dump(spec) + "```\n"


def test_the_demo_issue_registers_a_model_commits_a_record_and_comments(runtime):
    title, body = read_issue_file(EXAMPLES / "breast-cancer-xgboost.md")
    issue, record = run_issue(runtime, title, body)
    assert record["status"] == "SUCCEEDED", record.get("cause")
    state = record["output"]

    # The registry has the version, with its lineage.
    model = state["model"]
    client = open_client(runtime.settings)
    version = client.get_model_version_by_alias(model["name"], "challenger")
    assert str(version.version) == model["version"]
    assert version.tags["issue_number"] == str(issue.number)
    assert version.tags["spec_hash"] == state["spec_hash"]
    assert version.tags["data_version"] == state["dataset"]["data_version"]

    # The history record is committed, names the issue, and shows the metrics and the model.
    history = state["history"]
    path = runtime.settings.history_repo_path / history["path"]
    text = path.read_text()
    meta = front_matter(text)
    assert meta["status"] == "succeeded" and int(meta["issue"]) == issue.number
    assert f"{state['evaluation']['metrics']['f1']:.4f}" in text
    assert git(runtime, "log", "-1", "--format=%H", "--", history["path"]).strip() == history["commit_sha"]
    assert f"issue #{issue.number}" in git(runtime, "log", "-1", "--format=%s", history["commit_sha"])
    assert history["path"].split("/")[-1] in (path.parent / "README.md").read_text()
    assert "confusion_matrix.png" in git(runtime, "show", "--stat", "--format=", history["commit_sha"])

    # One closing comment on the issue, with the verdict, the model version and the record.
    comment = closing_comment(runtime, issue)
    assert "Model registered" in comment.body
    assert f"version {model['version']}" in comment.body and history["commit_sha"][:10] in comment.body
    assert "f1 | " in comment.body and "✅ pass" in comment.body

    # The execution record was written as the run went.
    saved = json.loads((runtime.settings.home / "executions" / f"{record['name']}.json").read_text())
    names = [s["name"] for s in saved["states"]]
    assert names[:3] == ["Start", "PrepareData", "StartTraining"]
    assert names[-1] == "Succeeded"
    assert saved["status"] == "SUCCEEDED"


def test_a_model_below_its_threshold_is_rejected_with_a_record_and_no_registration(runtime):
    body = yaml_issue(
        retraining={"max_attempts": 1},
        evaluation={"thresholds": {"accuracy": 0.9999, "f1": 0.99}},
        hyperparameters={"n_estimators": 3, "max_depth": 1},
    )
    issue, record = run_issue(runtime, "too strict", body)
    assert record["status"] == "FAILED" and record["error"] == "ModelRejected"
    state = next(s["output"] for s in reversed(record["states"]) if isinstance(s.get("output"), dict))
    assert "model" not in state
    assert (
        front_matter((runtime.settings.history_repo_path / state["history"]["path"]).read_text())["status"]
        == "rejected"
    )
    comment = closing_comment(runtime, issue)
    assert (
        "Model rejected" in comment.body and "❌ fail" in comment.body and "must be ≥ 0.9999" in comment.body
    )


def test_a_training_job_over_its_time_limit_fails_the_run_with_its_reason(runtime):
    body = yaml_issue(
        algorithm="random_forest",
        hyperparameters={"n_estimators": 5000},
        dataset={"source": "sklearn://digits", "target": "target"},
        compute={"max_runtime_s": 2},
    )
    issue, record = run_issue(runtime, "too slow", body)
    assert record["status"] == "FAILED" and record["error"] == "WorkflowFailed"
    state = next(s["output"] for s in reversed(record["states"]) if isinstance(s.get("output"), dict))
    assert state["training"]["status"] == "Failed"
    assert "MaxRuntimeExceeded" in state["training"]["secondary_status"]
    log = state["training"]["log_uri"].removeprefix("file://")
    assert open(log).read() is not None
    meta = front_matter((runtime.settings.history_repo_path / state["history"]["path"]).read_text())
    assert meta["status"] == "failed"
    comment = closing_comment(runtime, issue)
    assert "Run failed" in comment.body and "TrainingJobFailed" in comment.body and "2 s" in comment.body


def test_a_dataset_that_cannot_be_read_fails_the_run_with_its_reason(runtime):
    body = yaml_issue(dataset={"source": "file://examples/data/no-such-file.csv", "target": "y"})
    issue, record = run_issue(runtime, "missing data", body)
    assert record["status"] == "FAILED"
    comment = closing_comment(runtime, issue)
    assert "DatasetError" in comment.body and "no-such-file.csv" in comment.body


@pytest.mark.parametrize(
    "example",
    [
        "diabetes-random-forest.md",
        "wine-logistic-regression.md",
        "churn-csv-xgboost.md",
        "breast-cancer-neural-network.md",
    ],
)
def test_every_example_issue_passes_its_own_thresholds(runtime, example):
    title, body = read_issue_file(EXAMPLES / example)
    _, record = run_issue(runtime, title, body)
    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    assert all(check["passed"] for check in record["output"]["verdict"]["checks"])
