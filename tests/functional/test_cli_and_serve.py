"""The mlops CLI's offline commands, and the webhook served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from agents.issue_detector import sign
from mcp_server.server import free_port
from statemachine.cli import app
from statemachine.webhook_server import webhook_app
from tests.conftest import EXAMPLES, REPO_ROOT, load_event

runner = CliRunner()


def test_validate_prints_the_normalised_spec():
    result = runner.invoke(app, ["validate", str(EXAMPLES / "breast-cancer-xgboost.md")])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output.split("\n", 1)[1])
    assert spec["algorithm"] == "xgboost"
    assert spec["hyperparameters"]["max_depth"] == 4
    assert spec["hyperparameters"]["subsample"] == 1.0  # defaults are filled in
    assert result.output.startswith("# spec hash ")


def test_validate_lists_every_error_and_exits_non_zero():
    result = runner.invoke(app, ["validate", str(EXAMPLES / "invalid-spec.md")])
    assert result.exit_code == 1
    assert "6 error(s)" in result.output
    for path in (
        "preprocessing.scalling",
        "retraining.max_attempts",
        "compute.max_runtime_s",
        "dataset.split",
        "evaluation.thresholds.r2",
        "algorithm",
    ):
        assert f"• {path}:" in result.output


def test_parse_issue_prints_the_form_fields_as_json():
    result = runner.invoke(
        app,
        [
            "parse-issue",
            str(EXAMPLES / "breast-cancer-xgboost.md"),
            "--template",
            str(REPO_ROOT / "issue_templates" / "train.yml"),
        ],
    )
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    assert fields["algorithm"] == "xgboost"
    assert fields["dataset__source"] == "sklearn://breast_cancer"
    assert fields["deployment__strategy"] is None
    assert "max_depth: 4" in fields["spec"]


@pytest.fixture
def served(runtime):
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(webhook_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


def test_the_webhook_over_http_checks_the_exact_bytes_github_signed(served, runtime):
    body = json.dumps(load_event("ping.json")).encode()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1", "Content-Type": "application/json"}
    good = httpx.post(
        f"{served}/webhook",
        content=body,
        headers={**headers, "X-Hub-Signature-256": sign(runtime.secret, body)},
    )
    assert good.status_code == 200
    assert good.json()["status"] == "pong"
    forged = httpx.post(
        f"{served}/webhook",
        content=body,
        headers={**headers, "X-Hub-Signature-256": sign(b"not the secret", body)},
    )
    assert forged.status_code == 401
    assert httpx.get(f"{served}/healthz").json() == {"status": "ok"}
