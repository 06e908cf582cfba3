"""The `mlops` command shows no traceback for a user's mistake (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.cli import UserMistake, resolve_execution
from tests.conftest import REPO_ROOT

MLOPS = str(Path(sys.executable).with_name("mlops"))


def mlops(home: Path, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(MLOPS_HOME=str(home), COLUMNS="100", NO_COLOR="1")
    return subprocess.run([MLOPS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def no_traceback(result: subprocess.CompletedProcess[str]) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text and 'File "' not in text, text
    assert len(text.splitlines()) <= 10, text
    return " ".join(text.split())


@pytest.mark.parametrize(
    "args",
    [["status", "99"], ["history", "--issue", "99"], ["comment", "5", "/status"]],
    ids=["status", "history", "comment"],
)
def test_unknown_issue_is_one_line_naming_the_fix(tmp_path, args):
    result = mlops(tmp_path, *args)
    assert result.returncode == 1
    text = no_traceback(result)
    assert f"there is no local issue #{args[1] if args[0] != 'history' else '99'}" in text
    assert "mlops run ISSUE.md" in text


def test_body_not_from_the_form_is_a_spec_error(tmp_path):
    body = tmp_path / "body.md"
    body.write_text("hello, this is not an issue form\n")
    result = mlops(tmp_path, "parse-issue", str(body))
    assert result.returncode == 1
    assert "(issue body): not from this form" in no_traceback(result)


def test_alias_bomb_is_refused_in_a_few_lines(tmp_path):
    body = tmp_path / "bomb.md"
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(8)
    ]
    body.write_text("```yaml\n" + "\n".join(lines) + "\n```\n")
    result = mlops(tmp_path, "validate", str(body))
    assert result.returncode == 1
    text = no_traceback(result)
    assert "alias" in text.lower()
    assert len(result.stdout) < 2000


def test_unknown_execution_and_ambiguous_prefix(tmp_path):
    executions = tmp_path / "executions"
    executions.mkdir()
    for name in ("issue-1-aaaa-1", "issue-1-aaab-2", "issue-2-cccc-3"):
        (executions / f"{name}.json").write_text(
            json.dumps({"name": name, "status": "SUCCEEDED", "states": []})
        )
    missing = mlops(tmp_path, "status", "issue-9-")
    assert missing.returncode == 1
    assert "no execution is named 'issue-9-' or starts with it" in no_traceback(missing)
    ambiguous = mlops(tmp_path, "status", "issue-1-aa")
    assert ambiguous.returncode == 1
    assert "2 executions start with 'issue-1-aa'" in no_traceback(ambiguous)
    unique = mlops(tmp_path, "status", "issue-2")
    assert unique.returncode == 0
    assert "Execution issue-2-cccc-3" in unique.stdout


def test_names_are_listed_whole_on_a_narrow_terminal(tmp_path):
    name = "issue-12-" + "0123456789abcdef" * 3
    (tmp_path / "executions").mkdir()
    (tmp_path / "executions" / f"{name}.json").write_text(
        json.dumps({"name": name, "status": "RUNNING", "runtime_id": "dead", "current_state": "Evaluate"})
    )
    result = mlops(tmp_path, "status")
    assert result.returncode == 0
    assert name in result.stdout  # on one line, whole
    assert "gone" in result.stdout  # its runtime holds no lease


def test_unexpected_error_prints_one_line_and_the_log(tmp_path):
    (tmp_path / "executions").mkdir()
    (tmp_path / "executions" / "x.json").write_text(
        json.dumps({"name": "x", "status": "RUNNING", "states": 5})
    )
    result = mlops(tmp_path, "status", "x")
    assert result.returncode == 2
    text = no_traceback(result)
    assert text.startswith("unexpected error: TypeError")
    log = Path(text.split("The traceback is in ")[1].strip())
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text()


def test_resolve_execution_prefers_the_exact_name():
    records = [{"name": "issue-1-a"}, {"name": "issue-1-ab"}]
    assert resolve_execution(records, "issue-1-a") == {"name": "issue-1-a"}
    with pytest.raises(UserMistake, match="2 executions"):
        resolve_execution(records, "issue-1")


def test_the_terminal_retrain_hint_is_the_judges_patch():
    from statemachine.console import retrain_reply

    suggestion = {
        "kind": "overfitting",
        "message": "regularise",
        "figure": "gap 0.2",
        "metric": "f1",
        "value": 0.2,
        "patch": {"min_samples_leaf": 5, "max_depth": 6},
    }
    verdict = {"verdict": "retry", "checks": [], "reasons": [], "attempt": 1, "max_attempts": 3}
    spec = {"hyperparameters": {"n_estimators": 50}}
    record = {"output": {"verdict": {**verdict, "suggestions": [suggestion]}, "spec": spec}}
    assert retrain_reply(record) == "/retrain\nhyperparameters:\n  min_samples_leaf: 5\n  max_depth: 6"
    record = {"output": {"verdict": {**verdict, "suggestions": []}, "spec": spec}}
    assert retrain_reply(record) == "/retrain\nhyperparameters:\n  n_estimators: 50"
