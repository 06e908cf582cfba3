"""The operator's loop on the issue: a miss, a reply, a retrain, up to the retry budget."""

from __future__ import annotations

import dataclasses
import subprocess
import time

import pytest
import yaml

from mcp_server.core.rendering.history_markdown import front_matter
from statemachine.webhooks import comment_payload, issue_payload

pytestmark = pytest.mark.slow

WEAK = {"n_estimators": 1, "max_depth": 1}


def spec(thresholds: dict, max_attempts: int = 3, hyperparameters: dict | None = None) -> dict:
    return {
        "model_type": "supervised_learning",
        "task": "classification",
        "algorithm": "random_forest",
        "dataset": {"source": "sklearn://wine", "target": "target"},
        "hyperparameters": hyperparameters or WEAK,
        "evaluation": {"thresholds": thresholds},
        "retraining": {"max_attempts": max_attempts},
    }


def open_run(runtime, data: dict) -> tuple[object, dict]:
    body = "```yaml\n" + yaml.safe_dump(data) + "```\n"
    issue = runtime.backends.issues.create_issue(
        title="loop", body=body, author="alice", labels=["mlops:train"]
    )
    response = runtime.deliver("issues", issue_payload(issue.number, "loop", body, "alice", "OWNER"))
    assert response["status"] == "started", response
    return issue, runtime.wait(response["execution_arn"], timeout_s=300)


def reply(
    runtime, issue, text: str, association: str = "OWNER", action: str = "created", login: str = "bob"
) -> dict:
    posted = runtime.backends.issues.post_comment(issue.number, text, author=login)
    payload = comment_payload(
        issue.number, "loop", posted.id, text, login, posted.created_at, association, action
    )
    return runtime.deliver("issue_comment", payload)


def follow(runtime, record: dict) -> dict:
    return runtime.wait(record["waiting"]["execution_arn"], timeout_s=300)


def bodies(runtime, issue) -> list[str]:
    return [c.body for c in runtime.backends.issues.list_comments(issue.number)]


def records(runtime, issue) -> dict[int, dict]:
    folder = runtime.settings.history_repo_path / "training_history"
    found = {}
    for path in folder.glob(f"*-issue-{issue.number}-*.md"):
        meta = front_matter(path.read_text())
        found[int(meta["attempt"])] = meta
    return found


def test_a_miss_is_explained_then_retrained_by_reply_and_registered(runtime):
    started = time.perf_counter()
    issue, first = open_run(runtime, spec({"accuracy": 0.9}))
    assert first["waiting"]["attempt"] == 1
    ask = bodies(runtime, issue)[-1]
    assert "/retrain" in ask and "/approve" in ask and "/cancel" in ask
    assert "accuracy" in ask
    assert records(runtime, issue)[1]["status"] == "awaiting_operator"

    response = reply(
        runtime, issue, "/retrain\n```yaml\nhyperparameters:\n  n_estimators: 100\n  max_depth: null\n```"
    )
    assert response["status"] == "resumed"
    assert response["action"] == "retrain"
    final = follow(runtime, first)
    assert final["status"] == "SUCCEEDED", (final.get("error"), final.get("cause"))
    state = final["output"]
    assert state["attempt"] == 2
    assert state["spec"]["hyperparameters"]["n_estimators"] == 100
    assert state["operator"]["by"] == "bob"
    assert (
        "+  n_estimators: 100" in state["operator"]["diff"]
        or "n_estimators: 100" in state["operator"]["diff"]
    )
    assert state["model"]["version"]
    attempts = records(runtime, issue)
    assert attempts[1]["status"] == "awaiting_operator"
    assert attempts[2]["status"] == "succeeded"
    comments = bodies(runtime, issue)
    assert any("```diff" in body for body in comments)
    assert "Model registered" in comments[-1]
    assert sum("issue-mlops:status:" in body for body in comments) == 1  # one status comment, edited
    print(f"e2e loop wall time: {time.perf_counter() - started:.1f} s")


def test_approve_registers_the_model_as_it_is_and_records_who(runtime):
    issue, first = open_run(runtime, spec({"accuracy": 0.99}))
    assert reply(runtime, issue, "/approve")["action"] == "approve"
    final = follow(runtime, first)
    assert final["status"] == "SUCCEEDED"
    assert final["output"]["operator"]["action"] == "approve"
    assert final["output"]["model"]["version"]
    assert records(runtime, issue)[1]["status"] == "succeeded"
    assert "bob" in bodies(runtime, issue)[-1] or any(
        "approved" in b.lower() and "bob" in b for b in bodies(runtime, issue)
    )


def test_cancel_ends_the_run_with_a_record(runtime):
    issue, first = open_run(runtime, spec({"accuracy": 0.99}))
    assert reply(runtime, issue, "/cancel")["action"] == "cancel"
    final = follow(runtime, first)
    assert final["status"] == "FAILED"
    assert final["error"] == "RunCancelled"
    assert records(runtime, issue)[1]["status"] == "cancelled"
    assert not runtime.backends.waiting.list(issue.number)


def test_the_attempt_budget_running_out_fails_with_every_attempt_recorded(runtime):
    issue, first = open_run(runtime, spec({"accuracy": 0.9999}, max_attempts=2))
    assert reply(runtime, issue, "/retrain\nhyperparameters:\n  n_estimators: 2")["status"] == "resumed"
    final = follow(runtime, first)
    assert final["status"] == "FAILED"
    assert final["error"] == "ModelRejected"
    attempts = records(runtime, issue)
    assert sorted(attempts) == [1, 2]
    assert attempts[2]["status"] == "rejected"
    last = bodies(runtime, issue)[-1]
    assert "| attempt 1 |" in last
    assert "| attempt 2 |" in last


def test_an_invalid_patch_is_answered_and_the_run_keeps_waiting(runtime):
    issue, first = open_run(runtime, spec({"accuracy": 0.99}))
    response = reply(runtime, issue, "/retrain\nhyperparameters:\n  max_depth: -3")
    assert response["status"] == "invalid_patch"
    assert "hyperparameters.max_depth" in bodies(runtime, issue)[-1]
    [waiting] = runtime.backends.waiting.list(issue.number)
    assert waiting.execution_arn == first["waiting"]["execution_arn"]
    broken = reply(runtime, issue, "/retrain\n```yaml\nhyperparameters: [1, 2\n```")
    assert broken["status"] == "invalid_patch"
    assert reply(runtime, issue, "/cancel")["status"] == "resumed"
    follow(runtime, first)


def test_unauthorised_and_edited_comments_change_nothing(runtime):
    issue, first = open_run(runtime, spec({"accuracy": 0.99}))
    refused = reply(runtime, issue, "/approve", association="CONTRIBUTOR", login="mallory")
    assert refused["status"] == "refused"
    assert "mallory" in bodies(runtime, issue)[-1]
    edited = reply(runtime, issue, "/approve", action="edited")
    assert edited["status"] == "ignored"
    chatter = reply(runtime, issue, "Thanks, looking into it.")
    assert chatter["status"] == "ignored"
    [waiting] = runtime.backends.waiting.list(issue.number)
    assert waiting.execution_arn == first["waiting"]["execution_arn"]
    status = reply(runtime, issue, "/status")
    assert status["status"] == "status"
    assert "Attempt 1 of 3" in bodies(runtime, issue)[-1]
    assert reply(runtime, issue, "/cancel")["status"] == "resumed"
    follow(runtime, first)


def test_the_wait_times_out_with_a_comment(runtime):
    config = runtime.detector.config
    runtime.detector.config = dataclasses.replace(config, operator_timeout_s=2)
    try:
        issue, first = open_run(runtime, spec({"accuracy": 0.99}))
    finally:
        runtime.detector.config = config
    final = runtime.wait(first["waiting"]["execution_arn"], timeout_s=120, until_waiting=False)
    assert final["status"] == "FAILED"
    assert "timed out" in bodies(runtime, issue)[-1].lower()
    assert "OperatorTimedOut" in bodies(runtime, issue)[-1]
    assert not runtime.backends.waiting.list(issue.number)


def test_a_restart_while_waiting_loses_nothing(tmp_path):
    """`mlops run` ends while the run waits; `mlops comment` (a new process) resumes it."""
    from tests.e2e.test_cli_run import mlops

    body = "```yaml\n" + yaml.safe_dump(spec({"accuracy": 0.9})) + "```\n"
    issue_file = tmp_path / "issue.md"
    issue_file.write_text("<!-- title: loop over a restart -->\n" + body)
    home = tmp_path / "home"
    first = mlops(home, "run", str(issue_file))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Waiting" in first.stdout
    second = mlops(home, "comment", "1", "/retrain\nhyperparameters:\n  n_estimators: 100\n  max_depth: null")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resumed" in second.stdout
    assert "SUCCEEDED" in second.stdout
    log = subprocess.run(
        ["git", "-C", str(home / "repository"), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "attempt 1 awaiting_operator" in log and "attempt 2 succeeded" in log


def test_a_reply_that_arrives_while_the_run_is_down_is_kept_and_done_when_it_is_back(runtime):
    issue, first = open_run(runtime, spec({"accuracy": 0.9}))
    # What a restart leaves for a moment: a waiting record whose token the engine does not know.
    [waiting] = runtime.backends.waiting.list(issue.number)
    runtime.backends.waiting.save(waiting.model_copy(update={"task_token": "token-of-a-stopped-engine"}))
    text = "/retrain\nhyperparameters:\n  n_estimators: 100\n  max_depth: null"
    posted = runtime.backends.issues.post_comment(issue.number, text, author="bob")
    payload = comment_payload(issue.number, "loop", posted.id, text, "bob", posted.created_at, "OWNER")
    answered = runtime.deliver("issue_comment", payload, delivery_id="d-while-down")
    assert answered["statusCode"] == 202  # answered at once; the work could not be done yet
    assert answered["status"] == "unavailable"
    kept = runtime.backends.deliveries.get("d-while-down")
    assert kept.status == "received" and kept.attempts == 1  # kept for another try
    assert runtime.backends.waiting.list(issue.number)  # nothing was lost
    runtime.backends.waiting.save(waiting)  # the run is back (its execution waits with its token)
    deadline = time.monotonic() + 60
    while runtime.backends.deliveries.get("d-while-down").status != "done":
        assert time.monotonic() < deadline, "the worker did not try the delivery again"
        time.sleep(0.1)
    assert runtime.backends.deliveries.get("d-while-down").outcome["status"] == "resumed"
    final = runtime.wait(first["waiting"]["execution_arn"], timeout_s=300)
    assert final["status"] == "SUCCEEDED"
    assert final["output"]["attempt"] == 2
