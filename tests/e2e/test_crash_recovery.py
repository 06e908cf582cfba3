"""`kill -9` of `mlops run` while its training job runs: the next runtime resumes and adopts.

Real processes throughout: `mlops run` is killed with SIGKILL while the execution waits in
DescribeTraining, which leaves its training job running in its own process group. `mlops status`
then tells the execution's runtime is gone, and `mlops resume` takes the execution over at
its last state, adopts the running job (same process, no second job) and finishes the run
with one history record and one closing comment. Without a new runtime, the orphaned job ends
itself after ``MLOPS_ORPHAN_GRACE_S``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
MLOPS = str(Path(sys.executable).with_name("mlops"))

LONG_TRAINING = """<!-- title: [train] A long random forest -->
```yaml
model_type: supervised_learning
task: classification
algorithm: random_forest
dataset:
  source: sklearn://breast_cancer
  target: target
hyperparameters:
  n_estimators: 2000
evaluation:
  metrics: [accuracy, f1]
  thresholds:
    accuracy: 0.8
```
"""


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(MLOPS_HOME=str(home), COLUMNS="200", NO_COLOR="1", **extra)
    return env


def mlops(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, *args],
        cwd=REPO_ROOT,
        env=environment(home, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_during_training(tmp_path: Path, **extra: str) -> tuple[Path, int]:
    """Start `mlops run`, SIGKILL it while its job trains; return (the job folder, the job's pid)."""
    home = tmp_path / "home"
    issue = tmp_path / "long.md"
    issue.write_text(LONG_TRAINING)
    run = subprocess.Popen(
        [MLOPS, "run", str(issue)],
        cwd=REPO_ROOT,
        env=environment(home, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    job_file = None
    while time.monotonic() < deadline:
        records = [json.loads(p.read_text()) for p in (home / "executions").glob("*.json")]
        jobs = list((home / "jobs").glob("*/job.json"))
        if records and records[0].get("current_state") == "DescribeTraining" and jobs:
            job_file = jobs[0]
            break
        assert run.poll() is None, "mlops run ended before its job trained"
        time.sleep(0.1)
    assert job_file is not None, "the run never reached DescribeTraining"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    pid = json.loads(job_file.read_text())["pid"]
    assert alive(pid), "the job should outlive the killed runtime (it ran in its own group)"
    return job_file.parent, pid


def test_killed_run_is_resumed_and_its_running_job_adopted(tmp_path):
    job_dir, pid = kill_during_training(tmp_path)
    home = tmp_path / "home"

    status = mlops(home, "status")
    assert status.returncode == 0
    assert "RUNNING" in status.stdout and "gone" in status.stdout

    resumed = mlops(home, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "SUCCEEDED" in resumed.stdout
    assert [p.name for p in (home / "jobs").iterdir()] == [job_dir.name]  # no second job
    assert json.loads((job_dir / "job.json").read_text())["pid"] == pid  # the same process, adopted
    assert (job_dir / "model" / "metadata.json").is_file()
    records = list((home / "repository" / "training_history").glob("*-issue-1-*.md"))
    assert len(records) == 1
    comments = [c["body"] for c in json.loads((home / "issues" / "1.json").read_text())["comments"]]
    assert sum("<!-- issue-mlops:run:" in body for body in comments) == 1  # one closing comment
    assert "Model registered" in comments[-1]

    after = mlops(home, "status")
    assert "SUCCEEDED" in after.stdout and "gone" not in after.stdout


def test_orphaned_job_ends_itself_and_the_resumed_run_reports_it(tmp_path):
    job_dir, pid = kill_during_training(tmp_path, MLOPS_ORPHAN_GRACE_S="1")
    home = tmp_path / "home"
    deadline = time.monotonic() + 30
    while alive(pid):
        assert time.monotonic() < deadline, "the orphaned job kept running"
        time.sleep(0.2)
    assert "orphaned: the runtime that started this job stopped" in (job_dir / "training.log").read_text()

    resumed = mlops(home, "resume")
    assert resumed.returncode == 1
    assert "FAILED" in resumed.stdout
    records = list((home / "repository" / "training_history").glob("*-issue-1-*.md"))
    assert len(records) == 1 and "status: failed" in records[0].read_text()
