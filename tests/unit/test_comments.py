"""The issue comments of the operator loop, and the closing comment's new statuses."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mcp_server.core.judge.verdict import Verdict, judge
from mcp_server.core.models import (
    EvaluationReport,
    FairnessReport,
    HistoryCommit,
    HistoryRecord,
    IssueRef,
    RegisteredModel,
)
from mcp_server.core.rendering import comments
from mcp_server.core.rendering.comments import (
    approved_comment,
    attempts_exhausted_comment,
    cancelled_comment,
    not_waiting_comment,
    patch_errors_comment,
    retrain_accepted_comment,
    retry_comment,
    run_comment,
    status_comment,
    status_reply,
    timeout_comment,
    unauthorised_command_comment,
)
from mcp_server.core.spec.operator_commands import merge_patch, parse_command
from mcp_server.core.spec.schema import SpecError, validate_spec

#: A spec as written in an issue.
SPEC: dict[str, Any] = {
    "model_type": "supervised_learning",
    "task": "classification",
    "algorithm": "xgboost",
    "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
    "hyperparameters": {"max_depth": 6},
    "evaluation": {"metrics": ["accuracy", "f1"], "thresholds": {"f1": 0.95}},
    "retraining": {"max_attempts": 3},
}
#: The same spec normalised, as the workflow state carries it.
NORMALISED = validate_spec(SPEC).model_dump(mode="json")
TIMEOUT = "2025-02-07T12:00:00+00:00"
MARKER = re.compile(r"\A<!-- issue-mlops:[\w:.-]+ -->\n")


def evaluation(**values: Any) -> EvaluationReport:
    base: dict[str, Any] = {
        "evaluation_id": "eval-12",
        "metrics": {"f1": 0.912, "accuracy": 0.93},
        "validation_metrics": {"f1": 0.921, "accuracy": 0.94},
        "train_metrics": {"f1": 1.0, "accuracy": 1.0},
        "gaps": {"f1": 0.088, "accuracy": 0.07},
        "n_test": 86,
        "class_counts": {"malignant": 100, "benign": 357},
        "report_uri": "file:///ws/report.json",
        "duration_s": 2.0,
    }
    return EvaluationReport(**{**base, **values})


def verdict_for(report: EvaluationReport, attempt: int = 1, spec: dict[str, Any] = SPEC) -> Verdict:
    return judge(
        report.metrics,
        spec["evaluation"]["thresholds"],
        attempt=attempt,
        max_attempts=spec["retraining"]["max_attempts"],
        report=report,
        algorithm=spec["algorithm"],
        hyperparameters=spec["hyperparameters"],
        task=spec["task"],
    )


def record(status: str = "awaiting_operator", attempt: int = 1, **values: Any) -> HistoryRecord:
    report = values.pop("evaluation", evaluation())
    base: dict[str, Any] = {
        "record_id": f"issue-12-run-a{attempt}",
        "issue": IssueRef(number=12, title="Train", repository="acme/models"),
        "status": status,
        "attempt": attempt,
        "spec": NORMALISED,
        "spec_hash": "0123456789ab",
        "evaluation": report,
        "thresholds": SPEC["evaluation"]["thresholds"],
        "verdict": verdict_for(report, attempt).model_dump(mode="json"),
        "started_at": "2025-01-31T12:00:00+00:00",
        "finished_at": "2025-01-31T12:05:00+00:00",
    }
    return HistoryRecord(**{**base, **values})


def ready_reply(comment: str) -> str:
    """The text inside the four-backtick block that holds the ready-to-paste reply."""
    found = re.search(r"^````\n(.*?)\n````$", comment, re.MULTILINE | re.DOTALL)
    assert found is not None, comment
    return found.group(1)


# ---------------------------------------------------------------------------------------------
# retry_comment
# ---------------------------------------------------------------------------------------------


def test_retry_comment_shows_attempts_table_reasons_suggestions_and_deadline() -> None:
    attempt = record()
    verdict = Verdict.model_validate(attempt.verdict)

    comment = retry_comment(attempt, verdict, TIMEOUT)

    assert comment.startswith("<!-- issue-mlops:retry:issue-12-run-a1 -->\n")
    assert "### 🔁 Attempt 1 of 3 missed its thresholds: 2 attempts left" in comment
    assert "| metric | train | validation | test | threshold | result |" in comment
    assert "| f1 | 1.0000 | 0.9210 | 0.9120 | ≥ 0.95 | ❌ fail |" in comment
    assert "| accuracy | 1.0000 | 0.9400 | 0.9300 | — |  |" in comment
    assert "- f1 0.9120 < 0.95 (must be ≥ 0.95)" in comment
    assert "Figure: train f1 1.000 vs test f1 0.912: gap 0.088 (> 0.05)" in comment
    assert "`max_depth: 4`, `min_child_weight: 3.0`, `subsample: 0.8`" in comment
    assert "Figure: smallest class 'malignant' 100 rows vs largest 'benign' 357 rows" in comment
    assert "`scale_pos_weight: 0.28`" in comment
    for command in ("`/retrain`", "`/approve`", "`/cancel`", "`/status`"):
        assert command in comment
    assert "COLLABORATOR, MEMBER, OWNER" in comment
    assert f"until **{TIMEOUT}** (UTC)" in comment


def test_the_ready_to_paste_reply_parses_merges_and_validates() -> None:
    attempt = record()
    verdict = Verdict.model_validate(attempt.verdict)

    command = parse_command(ready_reply(retry_comment(attempt, verdict, TIMEOUT)))

    assert command is not None and command.kind == "retrain"
    assert command.patch == {
        "hyperparameters": {
            "max_depth": 4,
            "min_child_weight": 3.0,
            "subsample": 0.8,
            "scale_pos_weight": 0.28,
        }
    }
    patched = validate_spec(merge_patch(attempt.spec, command.patch))
    assert patched.hyperparameters["max_depth"] == 4
    assert patched.hyperparameters["scale_pos_weight"] == 0.28
    assert patched.hyperparameters["n_estimators"] == 200


def test_the_ready_to_paste_reply_merges_into_the_spec_as_written_in_the_issue() -> None:
    attempt = record(spec=SPEC)
    command = parse_command(
        ready_reply(retry_comment(attempt, Verdict.model_validate(attempt.verdict), TIMEOUT))
    )

    assert command is not None and command.patch is not None
    assert validate_spec(merge_patch(SPEC, command.patch)).hyperparameters["max_depth"] == 4


def test_without_a_suggested_patch_the_reply_block_is_the_current_hyperparameters() -> None:
    balanced = evaluation(
        metrics={"f1": 0.93}, train_metrics={"f1": 0.96}, gaps={}, class_counts={"a": 212, "b": 357}
    )
    attempt = record(evaluation=balanced)
    verdict = Verdict.model_validate(attempt.verdict)
    assert verdict.suggestions == []

    comment = retry_comment(attempt, verdict, TIMEOUT)

    assert "**Suggestions**" not in comment
    assert "no cause was diagnosed" in comment
    command = parse_command(ready_reply(comment))
    assert command is not None and command.patch is not None
    assert validate_spec(merge_patch(attempt.spec, command.patch)).model_dump(mode="json") == NORMALISED


def test_retry_comment_shows_a_failed_fairness_check() -> None:
    report = evaluation(
        metrics={"f1": 0.97},
        train_metrics={"f1": 0.98},
        class_counts=None,
        fairness=FairnessReport(
            sensitive_feature="sex",
            metric="selection_rate",
            by_group={"female": {"selection_rate": 0.41}, "male": {"selection_rate": 0.64}},
            difference=0.23,
            ratio=0.64,
            max_difference=0.1,
            passed=False,
        ),
    )
    attempt = record(evaluation=report)
    verdict = Verdict.model_validate(attempt.verdict)

    comment = retry_comment(attempt, verdict, TIMEOUT, allowed=["OWNER"])

    assert (
        "Fairness: selection_rate across the groups of 'sex' differs by 0.2300 (limit ≤ 0.1): ❌ fail"
        in comment
    )
    assert "group 'female' 0.410 vs group 'male' 0.640" in comment
    assert "Only replies from OWNER count" in comment


# ---------------------------------------------------------------------------------------------
# Replies and status
# ---------------------------------------------------------------------------------------------


def test_status_comment_has_the_run_marker_attempt_and_elapsed_time() -> None:
    comment = status_comment(
        execution="issue-12-run",
        state="training",
        attempt=2,
        max_attempts=3,
        elapsed_s=192.4,
        issue_number=12,
        updated_at="2025-01-31T12:03:12+00:00",
        waiting=False,
    )

    assert comment.startswith("<!-- issue-mlops:status:issue-12-run -->\n")
    assert "| State | training |" in comment
    assert "| Attempt | 2 of 3 |" in comment
    assert "| Elapsed | 3 min 12 s |" in comment
    assert "/approve" not in comment


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (59.6, "1 min 0 s"), (3725, "1 h 2 min"), (2 * 86_400 + 7200, "2 d 2 h")],
)
def test_status_comment_elapsed_time_is_human_readable(seconds: float, shown: str) -> None:
    comment = status_comment("r", "waiting", 1, 3, seconds, 12, "2025-01-31T12:00:00+00:00", waiting=True)

    assert f"| Elapsed | {shown} |" in comment
    assert "`/retrain`" in comment


def test_status_reply_while_waiting_and_when_nothing_waits() -> None:
    waiting = status_reply(
        run_id="issue-12-run",
        state="waiting for a reply on the issue",
        attempt=1,
        max_attempts=3,
        waiting_since="2025-01-31T12:05:00+00:00",
        timeout_at=TIMEOUT,
    )
    idle = status_reply(
        run_id=None,
        state="no run is waiting on this issue",
        attempt=None,
        max_attempts=None,
        waiting_since=None,
        timeout_at=None,
    )

    assert "Run `issue-12-run`: waiting for a reply on the issue" in waiting
    assert "- Attempt 1 of 3" in waiting
    assert "- Waiting since: 2025-01-31T12:05:00+00:00 (UTC)" in waiting
    assert f"- Waits until: {TIMEOUT} (UTC)" in waiting
    assert "### ℹ️ No run is waiting on this issue" in idle
    assert "Attempt" not in idle


def test_retrain_accepted_comment_shows_the_diff_and_the_new_attempt() -> None:
    diff = "--- spec (attempt 1)\n+++ spec (attempt 2)\n@@ -1 +1 @@\n-  max_depth: 6\n+  max_depth: 4"

    comment = retrain_accepted_comment("alice", 2, diff)

    assert "@alice's patch was accepted: attempt 2 is starting" in comment
    assert f"```diff\n{diff}\n```" in comment


def test_patch_errors_comment_lists_errors_and_keeps_waiting() -> None:
    errors = [
        SpecError("(patch)", None, "invalid YAML in the /retrain patch at line 2, column 3: oops"),
        SpecError("hyperparameters.max_depth", 99, "Input should be less than or equal to 32"),
    ]

    comment = patch_errors_comment(errors, timeout_at=TIMEOUT)

    assert comment.startswith("<!-- issue-mlops:patch-errors -->\n")
    assert "has 2 errors; nothing was changed" in comment
    assert "| `hyperparameters.max_depth` | `99` | Input should be less than or equal to 32 |" in comment
    assert f"The run keeps waiting until {TIMEOUT} (UTC)" in comment


def test_replies_to_commands_that_cannot_apply() -> None:
    assert "`/retrain` was not applied: no run on this issue is waiting" in not_waiting_comment(
        "bob", "retrain"
    )
    assert "`/cancel` was not applied" in not_waiting_comment("bob", "/cancel")
    refused = unauthorised_command_comment("eve", "CONTRIBUTOR", frozenset({"OWNER", "MEMBER"}))
    assert "@eve" in refused and "MEMBER, OWNER" in refused and "`CONTRIBUTOR`" in refused


def test_decision_replies_name_who_decided() -> None:
    assert "@alice cancelled the run" in cancelled_comment("alice")
    assert "@alice approved attempt 2" in approved_comment("alice", 2)
    assert f"The wait timed out: no decision arrived by {TIMEOUT} (UTC)" in timeout_comment(TIMEOUT)
    assert "no decision arrived in time" in timeout_comment("")


def test_attempts_exhausted_lists_every_attempt() -> None:
    first = record("awaiting_operator", 1)
    second = record(
        "rejected",
        2,
        evaluation=evaluation(metrics={"f1": 0.94, "accuracy": 0.95}),
        operator={"action": "retrain", "by": "alice", "patch": {"hyperparameters": {"max_depth": 4}}},
    )

    comment = attempts_exhausted_comment([second, first])

    assert comment.startswith("<!-- issue-mlops:attempts-exhausted:issue-12-run-a2 -->\n")
    assert "All 2 attempts missed their thresholds" in comment
    rows = [line for line in comment.splitlines() if line.startswith("| attempt ") and "`" in line]
    assert rows == [
        "| attempt 1 | `issue-12-run-a1` | f1 | 0.9120 | ≥ 0.95 | retry | — |",
        "| attempt 2 | `issue-12-run-a2` | f1 | 0.9400 | ≥ 0.95 | retry | "
        "retrain by @alice: hyperparameters.max_depth: 4 |",
    ]


def test_every_comment_starts_with_a_hidden_marker() -> None:
    attempt = record()
    bodies = [
        retry_comment(attempt, Verdict.model_validate(attempt.verdict), TIMEOUT),
        retrain_accepted_comment("a", 2, ""),
        patch_errors_comment([SpecError("(patch)", None, "x")]),
        not_waiting_comment("a", "/approve"),
        unauthorised_command_comment("a", "NONE", ["OWNER"]),
        status_comment("r", "s", 1, 1, 1.0, 1, "t", waiting=False),
        status_reply(
            run_id=None, state="s", attempt=None, max_attempts=None, waiting_since=None, timeout_at=None
        ),
        cancelled_comment("a"),
        approved_comment("a", 1),
        timeout_comment(TIMEOUT),
        attempts_exhausted_comment([attempt]),
        run_comment(attempt, None),
    ]

    assert all(MARKER.match(body) for body in bodies)
    assert set(comments.__all__) >= {"retry_comment", "status_comment", "status_reply", "run_comment"}


# ---------------------------------------------------------------------------------------------
# run_comment with the new statuses
# ---------------------------------------------------------------------------------------------

MODEL = RegisteredModel(
    name="breast-cancer-classification",
    version="4",
    semantic_version="1.1.0",
    model_uri="models:/breast-cancer-classification/4",
)
COMMIT = HistoryCommit(
    path="training_history/x.md", commit_sha="a" * 40, index_path="i", repository="acme/models"
)


def test_run_comment_says_who_approved_a_model_below_its_thresholds() -> None:
    approved = record(
        "succeeded",
        model=MODEL,
        operator={"action": "approve", "by": "alice", "at": "2025-01-31T13:00:00+00:00"},
    )

    comment = run_comment(approved, COMMIT)

    assert "### ✅ Model registered: `breast-cancer-classification` version 4" in comment
    assert "Approved by @alice at 2025-01-31T13:00:00+00:00 although it missed a threshold." in comment
    assert "remove and re-add" not in comment


def test_run_comment_for_a_plain_success_is_unchanged() -> None:
    passed = record("succeeded", model=MODEL)

    comment = run_comment(passed, COMMIT)

    assert "Approved by" not in comment
    assert "[training_history/x.md](https://github.com/acme/models/blob/" in comment


def test_run_comment_for_cancelled_waiting_and_timed_out_runs() -> None:
    cancelled = run_comment(record("cancelled", operator={"action": "cancel", "by": "bob"}), None)
    waiting = run_comment(record("awaiting_operator"), None)
    timed_out = run_comment(record("rejected", operator={"action": "timeout", "at": TIMEOUT}), None)

    assert "### 🛑 Run cancelled by @bob: no model was registered" in cancelled
    assert "remove and re-add the `mlops:train` label" in cancelled
    assert "### ⏸️ Attempt 1 missed its thresholds: waiting for an operator" in waiting
    assert "Reply `/retrain` with a YAML patch" in waiting
    assert "**Verdict: retry**" in waiting
    assert "### ❌ Model rejected" in timed_out
    assert f"The wait for an operator's decision timed out at {TIMEOUT}." in timed_out


def test_a_local_job_asked_for_spot_says_it_does_not_apply() -> None:
    from mcp_server.backends.local.job_folder import SPOT_NOTE, local_notes
    from mcp_server.core.models import TrainingJob
    from mcp_server.core.rendering.history_markdown import render_record

    assert local_notes({"compute": {"use_spot": True}}) == [SPOT_NOTE]
    assert local_notes({"compute": {"use_spot": False}}) == []
    assert local_notes({}) == []
    job = TrainingJob(job_name="j-train-a1", status="Completed", algorithm="xgboost", notes=[SPOT_NOTE])
    record_with_note = record("succeeded").model_copy(update={"training": job})
    comment = run_comment(record_with_note, None)
    assert f"- Note: {SPOT_NOTE}" in comment
    assert "| Note | compute.use_spot does not apply locally" in render_record(record_with_note, {})
