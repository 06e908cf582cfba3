"""`mlops run` as a user runs it (a real process), then `mlops status` and `mlops history`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow
MLOPS = str(Path(sys.executable).with_name("mlops"))


def mlops(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(MLOPS_HOME=str(home), COLUMNS="200", NO_COLOR="1")
    return subprocess.run([MLOPS, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_mlops_run_prints_where_everything_landed(tmp_path):
    result = mlops(tmp_path, "run", str(EXAMPLES / "wine-logistic-regression.md"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"Execution issue-1-[0-9a-f-]{36}\s+SUCCEEDED", out)
    for state in (
        "PrepareData",
        "StartTraining",
        "Evaluate",
        "Judge",
        "RegisterModel",
        "RecordHistory",
        "Notify",
    ):
        assert state in out
    assert re.search(r"accuracy\s+│\s+\d\.\d{4}\s+│\s+≥ 0\.9\s+│\s+pass", out)
    assert "Registered model wine-classification version 1 (semantic 1.0.0" in out
    sha = re.search(r"Commit ([0-9a-f]{40})", out).group(1)
    log = subprocess.run(
        ["git", "-C", str(tmp_path / "repository"), "log", "--format=%H %s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{sha} training history: issue #1" in log
    assert "Model registered" in out  # the comment's text
    (record,) = (tmp_path / "repository" / "training_history").glob("*-issue-1-*.md")
    text = record.read_text()
    assert "](file:" not in text  # every link is relative to the record
    link = re.search(r"\[baseline\.json\]\((assets/[^)]+/baseline\.json)\)", text).group(1)
    assert "feature" in (record.parent / link).read_text()

    status = mlops(tmp_path, "status")
    assert status.returncode == 0
    assert re.search(r"issue-1-\S+\s+│\s+SUCCEEDED", status.stdout)
    history = mlops(tmp_path, "history", "--issue", "1")
    assert history.returncode == 0
    assert "succeeded" in history.stdout
    assert "Model registered" in history.stdout


def test_mlops_run_of_an_invalid_issue_shows_the_error_comment_and_fails(tmp_path):
    result = mlops(tmp_path, "run", str(EXAMPLES / "invalid-spec.md"))
    assert result.returncode == 1
    assert "invalid_spec" in result.stdout
    assert "preprocessing.scalling" in result.stdout
    assert not list((tmp_path / "executions").glob("*.json"))
