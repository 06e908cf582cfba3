"""Every way an execution can end leaves a comment naming the state and a failed record.

The engine's own errors are driven for real: an agent's result that makes the state too large
(``States.DataLimitExceeded``, which no Catch takes), a JSONPath the state does not have
(``States.Runtime`` in a Pass state), the execution's own timeout (``States.Timeout``), a stop
(``ABORTED``), a failure of the failure report itself (``ReportingFailed``), and an agent's
exception (caught: the workflow reports it, and nothing is reported twice). Agents are swapped
for the duration of a test through the engine's dispatch table.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml

from mcp_server.core.rendering.history_markdown import front_matter
from statemachine import engine
from statemachine.engine import substitute
from statemachine.functions import local_substitutions
from statemachine.webhooks import issue_payload
from tests.conftest import wait_quiet

SPEC = {
    "model_type": "supervised_learning",
    "task": "classification",
    "algorithm": "logistic_regression",
    "dataset": {"source": "sklearn://iris", "target": "target"},
    "evaluation": {"thresholds": {"accuracy": 0.5}},
}


@contextmanager
def agent(function_name: str, handler: Any) -> Iterator[None]:
    """Dispatch ``function_name`` to ``handler`` for the duration of the block."""
    original = engine._handlers[function_name]
    engine._handlers[function_name] = handler
    try:
        yield
    finally:
        engine._handlers[function_name] = original


def start(runtime) -> tuple[Any, dict[str, Any]]:
    body = "```yaml\n" + yaml.safe_dump(SPEC) + "```\n"
    issue = runtime.backends.issues.create_issue(
        title="ending", body=body, author="alice", labels=["mlops:train"]
    )
    response = runtime.deliver("issues", issue_payload(issue.number, "ending", body, "alice", "OWNER"))
    assert response["status"] == "started", response
    return issue, response


def run_to_end(runtime) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Start a run of a new issue and wait for its end; return (issue, webhook answer, record)."""
    issue, response = start(runtime)
    return issue, response, runtime.wait(response["execution_arn"], timeout_s=120)


def reported(runtime, issue, execution: str, timeout_s: float = 60) -> str:
    """Wait for the failure comment and the failed record of a run; return the comment."""
    deadline = time.monotonic() + timeout_s
    while True:
        bodies = [c.body for c in runtime.backends.issues.list_comments(issue.number)]
        failures = [b for b in bodies if "Run failed" in b and "issue-mlops:status" not in b]
        records = list((runtime.settings.history_repo_path / "training_history").glob(f"*{execution}*.md"))
        status = [b for b in bodies if "issue-mlops:status" in b]
        final = bool(status) and "This run has ended" in status[-1]
        if failures and records and final:
            assert len(failures) == 1, "the failure is reported once"
            assert front_matter(records[0].read_text())["status"] == "failed"
            return failures[0]
        assert time.monotonic() < deadline, f"no failure comment, record and final status: {bodies}"
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def _quiet(runtime):
    wait_quiet(runtime)
    yield
    wait_quiet(runtime)


def test_a_result_that_makes_the_state_too_large_is_reported(runtime):
    real = engine._handlers["mlops-judge"]

    def bloated(event, context):
        verdict = real(event, context)
        # the result alone stays under the 256 KiB limit; merged into the state it does not
        room = 256 * 1024 - len(json.dumps(verdict)) - 200
        verdict["reasons"] = verdict["reasons"] + ["x" * room]
        return verdict

    with agent("mlops-judge", bloated):
        issue, response, record = run_to_end(runtime)
    assert record["status"] == "FAILED"
    assert record["error"] == "States.DataLimitExceeded"
    comment = reported(runtime, issue, response["execution_name"])
    assert "in state `Judge`" in comment and "States.DataLimitExceeded" in comment


def test_a_path_the_state_lacks_is_reported(runtime):
    def failed_without_reason(event, context):
        state = event["state"]
        return {
            "job_name": f"{state['run_id'][:40]}-x",
            "status": "Failed",
            "algorithm": "logistic_regression",
        }

    with agent("mlops-training", failed_without_reason):
        issue, response, record = run_to_end(runtime)
    assert record["status"] == "FAILED"
    assert record["error"] == "States.Runtime"
    comment = reported(runtime, issue, response["execution_name"])
    assert "in state `TrainingFailed`" in comment


def test_the_executions_own_timeout_is_reported(runtime):
    definition = json.loads(substitute(runtime.engine.definition_path.read_text(), local_substitutions()))
    definition["TimeoutSeconds"] = 3
    arn = runtime.engine.create_state_machine("short-lived", json.dumps(definition))
    release = threading.Event()

    def slow(event, context):
        release.wait(30)
        raise RuntimeError("released")

    body = "```yaml\n" + yaml.safe_dump(SPEC) + "```\n"
    issue = runtime.backends.issues.create_issue(
        title="timeout", body=body, author="alice", labels=["mlops:train"]
    )
    detector = runtime.detector
    original = detector.config
    try:
        detector.config = dataclasses.replace(original, state_machine_arn=arn)
        with agent("mlops-data-preparation", slow):
            response = runtime.deliver(
                "issues", issue_payload(issue.number, "timeout", body, "alice", "OWNER")
            )
            record = runtime.wait(response["execution_arn"], timeout_s=60)
            release.set()
    finally:
        detector.config = original
    assert record["status"] == "TIMED_OUT"
    comment = reported(runtime, issue, response["execution_name"])
    assert "States.Timeout" in comment and "in state `PrepareData`" in comment


def test_a_stopped_execution_is_reported(runtime):
    release = threading.Event()
    real = engine._handlers["mlops-evaluation"]

    def blocked(event, context):
        release.wait(60)
        return real(event, context)

    with agent("mlops-evaluation", blocked):
        issue, response = start(runtime)
        deadline = time.monotonic() + 120
        while runtime.recorder.refresh(response["execution_arn"]).get("current_state") != "Evaluate":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        runtime.engine.client().stop_execution(
            executionArn=response["execution_arn"], cause="stopped by a test"
        )
        release.set()  # the engine stops the execution once its current state returns
        record = runtime.wait(response["execution_arn"], timeout_s=60)
    assert record["status"] == "ABORTED"
    assert [s["name"] for s in record["states"]][-1] == "Evaluate"  # nothing ran after the stop
    comment = reported(runtime, issue, response["execution_name"])
    assert "in state `Evaluate`" in comment


def test_a_failure_whose_report_fails_is_reported_by_the_reporter(runtime):
    real_notify = engine._handlers["mlops-notification"]
    real_train = engine._handlers["mlops-training"]

    def broken_training(event, context):
        raise RuntimeError("the training agent broke")

    def notify(event, context):
        if event.get("state_name") == "NotifyFailure":
            raise ConnectionError("the issue tracker is down")
        return real_notify(event, context)

    with agent("mlops-training", broken_training), agent("mlops-notification", notify):
        issue, response, record = run_to_end(runtime)
    assert real_train is engine._handlers["mlops-training"]
    assert record["status"] == "FAILED"
    assert record["error"] == "ReportingFailed"
    comment = reported(runtime, issue, response["execution_name"])
    assert "in state `StartTraining`" in comment and "the training agent broke" in comment


def test_a_caught_agent_error_is_reported_once_by_the_workflow(runtime):
    def broken(event, context):
        raise KeyError("no such column")

    with agent("mlops-evaluation", broken):
        issue, response, record = run_to_end(runtime)
    assert record["error"] == "WorkflowFailed"
    comment = reported(runtime, issue, response["execution_name"])
    assert "in state `Evaluate`" in comment and "KeyError" in comment
    time.sleep(1)  # the reporter would have commented by now
    bodies = [c.body for c in runtime.backends.issues.list_comments(issue.number)]
    assert sum("Run failed" in b and "issue-mlops:status" not in b for b in bodies) == 1
