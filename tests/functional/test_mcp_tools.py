"""Every MCP tool through the SDK's in-memory client, against the real local backends."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
from typing import Any

import pytest
from mcp import Client

from mcp_server.core.spec.schema import validate_spec
from mcp_server.errors import NotFoundError, from_payload
from mcp_server.server import build_server
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT

EXPECTED_TOOLS = {
    "upsert_comment",
    "await_operator",
    "list_waiting_runs",
    "complete_waiting_run",
    "prepare_dataset",
    "start_training_job",
    "describe_training_job",
    "start_tuning_job",
    "describe_tuning_job",
    "evaluate_model",
    "register_model",
    "post_comment",
    "list_comments",
    "record_training_history",
    "notify",
    "package_model",
    "deploy_model",
    "shift_traffic",
    "describe_endpoint",
    "list_endpoints",
    "get_endpoint_metrics",
    "invoke_endpoint",
    "rollback_endpoint",
    "record_endpoint_event",
    "delete_endpoint",
    "replay_validation_traffic",
    "set_champion",
    "run_monitoring_job",
    "describe_monitoring_job",
    "get_drift_report",
    "put_ground_truth",
    "put_monitoring_schedule",
    "get_monitoring_schedule",
    "list_monitoring_schedules",
    "get_monitor_state",
    "save_monitor_state",
    "list_alerts",
    "send_alert",
    "get_data_version",
    "start_retraining",
    "describe_retraining",
    "record_report",
}
#: Tools that change or remove what an endpoint serves.
DESTRUCTIVE_TOOLS = {"deploy_model", "shift_traffic", "rollback_endpoint", "delete_endpoint"}
SPEC = validate_spec(
    {
        "model_type": "supervised_learning",
        "task": "classification",
        "algorithm": "xgboost",
        "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
        "hyperparameters": {"n_estimators": 50, "max_depth": 3},
        "evaluation": {"thresholds": {"f1": 0.9}},
    }
).model_dump(mode="json")


def call(server: Any, name: str, arguments: dict[str, Any]) -> Any:
    async def run() -> Any:
        async with Client(server) as client:
            return await client.call_tool(name, arguments)

    return asyncio.run(run())


def ok(result: Any) -> Any:
    assert not result.is_error, result.content
    content = result.structured_content
    return content["result"] if isinstance(content, dict) and set(content) == {"result"} else content


def error_text(result: Any) -> str:
    assert result.is_error
    return " ".join(part.text for part in result.content)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(environ={}, home=tmp_path_factory.mktemp("tools-home"), allow_write=True)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Any:
    return build_server(settings, base_dir=REPO_ROOT)


def test_the_server_lists_every_tool_with_a_description_and_typed_input(server):
    async def run() -> Any:
        async with Client(server) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in asyncio.run(run())}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description and tool.description.split("\n")[0].endswith("."), tool.name
        assert tool.input_schema["type"] == "object"
    assert {name for name, tool in tools.items() if tool.annotations.destructive_hint} == DESTRUCTIVE_TOOLS
    assert tools["describe_endpoint"].annotations.read_only_hint is True
    assert tools["describe_training_job"].annotations.read_only_hint is True
    assert tools["post_comment"].annotations.read_only_hint is False
    assert tools["describe_training_job"].input_schema["properties"]["job_name"]["pattern"]


def test_a_read_only_server_refuses_tools_that_change_the_world(settings, tmp_path):
    read_only = build_server(dataclasses.replace(settings, allow_write=False), base_dir=REPO_ROOT)
    text = error_text(call(read_only, "notify", {"subject": "s", "message": "m"}))
    assert "[WriteNotAllowedError]" in text and "--allow-write" in text
    assert not (settings.home / "notifications.jsonl").exists()
    for name, arguments in {
        "deploy_model": {
            "desired": {
                "endpoint_name": "x",
                "variants": [
                    {
                        "name": "v1",
                        "weight": 100,
                        "model": {
                            "model_name": "m",
                            "version": "1",
                            "model_uri": "file:///m",
                            "model_data": "file:///m",
                        },
                    }
                ],
            }
        },
        "shift_traffic": {"endpoint_name": "x", "weights": {"v1": 100}},
        "rollback_endpoint": {"endpoint_name": "x"},
        "delete_endpoint": {"endpoint_name": "x"},
    }.items():
        assert "[WriteNotAllowedError]" in error_text(call(read_only, name, arguments)), name
    # reading is allowed: an unknown endpoint is NotFound, not refused
    assert "[NotFoundError] no endpoint named x" in error_text(
        call(read_only, "describe_endpoint", {"endpoint_name": "x"})
    )
    assert ok(call(read_only, "list_endpoints", {})) == []


@pytest.mark.slow
def test_the_tools_take_a_spec_from_data_to_a_committed_record(server, settings):
    dataset = ok(call(server, "prepare_dataset", {"spec": SPEC}))
    assert dataset["split_sizes"]["train"] > dataset["split_sizes"]["test"] > 0
    assert len(dataset["data_version"]) == 12

    started = ok(
        call(
            server,
            "start_training_job",
            {
                "job_name": "tools-train-a1",
                "spec": SPEC,
                "dataset": dataset,
                "experiment": "issue-1",
                "tags": {
                    "issue": "1",
                    "execution": "tools",
                    "spec_hash": "abc",
                    "data_version": dataset["data_version"],
                },
            },
        )
    )
    assert started["status"] in ("InProgress", "Completed")
    deadline = time.monotonic() + 120
    while (job := ok(call(server, "describe_training_job", {"job_name": "tools-train-a1"})))[
        "status"
    ] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert job["status"] == "Completed", job
    assert job["metrics"]["validation_f1"] > 0.9

    report = ok(
        call(
            server,
            "evaluate_model",
            {
                "request": {
                    "evaluation_id": "tools-eval",
                    "task": "classification",
                    "model_uri": job["model_uri"],
                    "dataset": dataset,
                    "metrics": ["f1", "accuracy"],
                    "tracking_run_id": job["tracking_run_id"],
                }
            },
        )
    )
    assert report["metrics"]["f1"] > 0.9
    assert {"confusion_matrix", "roc_curve"} <= set(report["plots"])

    model = ok(
        call(
            server,
            "register_model",
            {
                "request": {
                    "model_name": "tools-model",
                    "model_uri": job["model_uri"],
                    "tracking_run_id": job["tracking_run_id"],
                    "metrics": report["metrics"],
                    "model_type": "supervised_learning",
                    "algorithm": "xgboost",
                    "feature_names": dataset["feature_names"],
                    "hyperparameters": SPEC["hyperparameters"],
                    "preprocessing": SPEC["preprocessing"],
                    "lineage": {
                        "issue_number": 1,
                        "execution_name": "tools",
                        "job_name": "tools-train-a1",
                        "spec_hash": "abc",
                        "data_version": dataset["data_version"],
                        "dataset_id": dataset["dataset_id"],
                    },
                }
            },
        )
    )
    assert model["version"] == "1" and model["semantic_version"] == "1.0.0"
    assert "challenger" in model["aliases"]

    settings.home.joinpath("issues").mkdir(exist_ok=True)
    from mcp_server.backends.local.issues import LocalIssueStore

    issue = LocalIssueStore(settings).create_issue(title="t", body="b", author="alice", labels=[])
    first = ok(
        call(server, "post_comment", {"issue_number": issue.number, "body": "hello", "idempotency_key": "k1"})
    )
    again = ok(
        call(server, "post_comment", {"issue_number": issue.number, "body": "hello", "idempotency_key": "k1"})
    )
    assert first["id"] == again["id"]
    listed = ok(call(server, "list_comments", {"issue_number": issue.number}))
    assert [c["body"] for c in listed] == ["hello"]

    record = {
        "record_id": "tools-a1",
        "issue": {"number": issue.number, "title": "t"},
        "status": "succeeded",
        "spec": SPEC,
        "spec_hash": "abc",
        "dataset": dataset,
        "training": job,
        "evaluation": report,
        "thresholds": {"f1": 0.9},
        "verdict": {"verdict": "pass", "reasons": [], "checks": []},
        "model": model,
        "started_at": "2026-11-21T10:00:00+00:00",
        "finished_at": "2026-11-21T10:01:00+00:00",
    }
    files = {f"{name}.png": uri for name, uri in report["plots"].items()}
    commit = ok(call(server, "record_training_history", {"record": record, "files": files}))
    repo = settings.history_repo_path
    shown = subprocess.run(
        ["git", "-C", str(repo), "show", "--stat", "--format=%s", commit["commit_sha"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"issue #{issue.number}" in shown and commit["path"] in shown

    receipt = ok(call(server, "notify", {"subject": "done", "message": "m", "attributes": {"issue": "1"}}))
    lines = (settings.home / "notifications.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["message_id"] == receipt["message_id"]


def test_errors_come_back_as_structured_payloads_with_class_code_and_retryable(server):
    missing = call(server, "describe_training_job", {"job_name": "no-such-job"})
    assert missing.is_error and "[NotFoundError]" in error_text(missing)
    assert missing.structured_content["error"] == {
        "type": "NotFoundError",
        "code": "NOT_FOUND",
        "retryable": False,
        "message": missing.structured_content["error"]["message"],
    }
    assert "no-such-job" in missing.structured_content["error"]["message"]
    rebuilt = from_payload(missing.structured_content["error"])
    assert isinstance(rebuilt, NotFoundError) and not rebuilt.retryable
    bad = dict(
        SPEC, dataset={**SPEC["dataset"], "source": "file://examples/data/missing.csv", "name": "missing"}
    )
    dataset = call(server, "prepare_dataset", {"spec": bad})
    assert dataset.structured_content["error"]["type"] == "DatasetError"
    assert dataset.structured_content["error"]["code"] == "DATASET"
    comment = call(server, "post_comment", {"issue_number": 999, "body": "x"})
    assert comment.structured_content["error"]["type"] == "NotFoundError"
    # Arguments outside the tool's schema are refused by the SDK before the tool runs.
    assert error_text(call(server, "describe_training_job", {"job_name": "bad name!"}))


def test_the_agents_rebuild_the_servers_error_class_from_the_payload():
    from mcp_types import CallToolResult, TextContent

    from agents.runtime import error_from_result
    from mcp_server.errors import TransientError, to_payload
    from mcp_server.tools.guard import error_result

    result = error_result(TransientError("throttled"))
    error = error_from_result(result, "prepare_dataset")
    assert type(error) is TransientError and error.retryable and str(error) == "throttled"
    crash = error_from_result(error_result(KeyError("x")), "notify")
    assert type(crash).__name__ == "InternalError" and "KeyError" in str(crash)
    text_only = CallToolResult(
        content=[TextContent(type="text", text="1 validation error for x")], is_error=True
    )
    assert type(error_from_result(text_only, "notify")).__name__ == "InvalidArgumentError"
    assert to_payload(ValueError("v")).type == "InternalError"
