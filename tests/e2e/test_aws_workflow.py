"""The whole workflow with ``MLOPS_BACKEND=aws`` against moto, in its own process (``tests/aws_world.py``).

The definition is the CDK app's synthesised one; GitHub is the fake REST server of
``tests/github_api.py`` in this process. The run must leave what a run on AWS leaves: objects
under the bucket's documented prefixes, a model package with its metrics and semantic version,
an SNS message, a history commit and the comment on the issue. The deployed endpoint is then
watched: shifted traffic in its S3 capture is found by the synthesised monitoring workflow, which
alerts on the issue and over SNS. A training job that fails (``FailureReason``) must reach the
issue the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdk.storage_stack import PREFIXES
from mcp_server.core.rendering.history_markdown import INDEX_DATA_PATH, read_index_data
from tests.conftest import EXAMPLES, REPO_ROOT
from tests.github_api import FakeGitHub, serve

pytestmark = pytest.mark.slow
ISSUE = EXAMPLES / "wine-logistic-regression.md"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    with serve(state):
        state.init_branch({"README.md": b"# models\n"})
        yield state


def run_world(github: FakeGitHub, tmp_path: Path, issue: int, *flags: str) -> dict[str, Any]:
    github.add_issue(issue, "[train] Logistic regression on wine cultivars")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_", "AWS_"))}
    env["GITHUB_API_URL"] = github.base_url
    done = subprocess.run(
        [sys.executable, "-m", "tests.aws_world", str(issue), str(ISSUE), str(tmp_path / "world"), *flags],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_issue_runs_end_to_end_on_the_aws_backends(github: FakeGitHub, tmp_path: Path) -> None:
    world = run_world(github, tmp_path, 21, "--deploy", "--monitor")

    assert world["status"] == "SUCCEEDED", (
        world["error"],
        world["cause"],
        github.comments[21][-1]["body"][-2500:],
    )
    keys = world["s3_keys"]
    assert any(k.startswith("datasets/wine-") and k.endswith("/raw/data.parquet") for k in keys)
    for split in ("train", "validation", "test"):
        assert any(k.endswith(f"/{split}/data.parquet") and k.startswith("datasets/") for k in keys)
    assert any(k.startswith("jobs/") and k.endswith("/output/model.tar.gz") for k in keys)
    assert any(k.startswith("evaluations/") and k.endswith("/output/report.json") for k in keys)
    assert any(k.startswith("evaluations/") and "/output/plots/" in k for k in keys)
    assert any(k.startswith("preparations/prepare-") and k.endswith("/output/dataset.json") for k in keys)
    assert any(k.startswith("preparations/prepare-") and k.endswith("/published.json") for k in keys)
    assert {k.split("/", 1)[0] for k in keys} <= set(PREFIXES)
    assert [
        r for r in world["processing_runs"] if r.startswith("prepare-")
    ]  # a processing job prepared the data
    [package] = world["model_packages"]
    assert package["group"] == "wine-classification"
    assert package["status"] == "Approved"  # deployed and promoted: the champion
    assert package["metadata"]["semantic_version"] == "1.0.0"
    assert float(package["metadata"]["metric.accuracy"]) >= 0.9
    assert package["model_data_url"].endswith("/output/model.tar.gz")
    [message] = [m for m in world["sns"] if "issue" in m.get("MessageAttributes", {})]
    assert message["MessageAttributes"]["issue"]["Value"] == "21"
    assert "succeeded" in message["Subject"].lower() or "accept" in message["Message"].lower()
    [monitoring_commit, commit, _initial] = github.history()  # the run's record, then the drift report
    assert monitoring_commit["message"].startswith("monitoring: wine ")
    [row] = read_index_data(github.files_at()[INDEX_DATA_PATH].decode())
    assert row["status"] == "succeeded"
    plots = [p for p in github.files_at() if p.startswith("training_history/assets/") and p.endswith(".png")]
    assert plots  # the plots were read from S3 and committed beside the record
    final = next(c["body"] for c in github.comments[21] if "Deployment: promoted" in c["body"])  # the run's
    assert f"/blob/{commit['sha']}/training_history/{row['record_path']}" in final
    assert "accuracy" in final
    # the deployment: a SageMaker endpoint serving the version, its packaging beside the record
    [endpoint] = world["endpoints"]
    assert endpoint["endpoint"]["EndpointName"] == "wine"
    [variant] = endpoint["config"]["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"]) == ("v1", "wine-v1")
    assert endpoint["config"]["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert any(k.startswith("models/wine-classification/1.0.0/package/") for k in keys)
    assert any(k.startswith("endpoints/wine/") for k in keys)
    assert (
        "Deployment: promoted" in final
        and "runtime.sagemaker.us-east-1.amazonaws.com/endpoints/wine" in final
    )
    assert any(p.endswith("/package/Dockerfile") for p in github.files_at())

    # watched: the synthesised monitoring workflow, a SageMaker processing job over the S3 capture
    monitoring = world["monitoring"]
    assert monitoring["status"] == "SUCCEEDED", (monitoring["error"], monitoring["cause"])
    job = monitoring["output"]["job"]
    assert job["rows"] == 120 and job["drifted_features"][0] == "alcohol"
    assert job["job_name"] in world["processing_runs"]
    assert f"monitoring/wine/jobs/{job['job_name']}/output/constraint_violations.json" in keys
    assert "drift" in monitoring["output"]["alarms"]["opened"]
    assert monitoring["schedules"] == ["mlops-monitor-wine"]  # EventBridge Scheduler
    assert monitoring["dashboards"] == ["mlops-wine"]
    alert = next(c["body"] for c in github.comments[21] if c["body"].startswith("### Monitoring alert"))
    assert "| alcohol |" in alert
    assert any(
        p.startswith(f"training_history/monitoring/wine/{job['job_name']}/") for p in github.files_at()
    )
    [sns_alert] = [m for m in world["sns"] if m.get("Subject", "").startswith("[issue-mlops] wine")]
    assert "alcohol" in sns_alert["Message"]


def test_a_failed_training_job_reaches_the_issue(github: FakeGitHub, tmp_path: Path) -> None:
    world = run_world(github, tmp_path, 22, "--fail-training")

    assert world["status"] in ("FAILED", "SUCCEEDED")
    assert world["model_packages"] == []
    bodies = [c["body"] for c in github.comments[22]]
    failure = next(b for b in bodies if "no_such_column" in b)
    assert "AlgorithmError" in failure
    [row] = read_index_data(github.files_at()[INDEX_DATA_PATH].decode())
    assert row["status"] == "failed"
