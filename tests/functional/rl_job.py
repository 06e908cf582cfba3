"""Run the reinforcement-learning training program as a local job, as the local backend starts it.

The job folder plays ``/opt/ml``; the program is started by the real launcher (warm: forked from
the preloaded fork server; cold: a fresh interpreter) with the backend's address-space limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mcp_server.backends.local import launcher
from mcp_server.backends.local.job_folder import parse_metrics
from mcp_server.core.jobs.requests import encode_hyperparameters
from mcp_server.settings import Settings

PROGRAM = "training_containers.rl.train"
MEMORY_LIMIT_MB = Settings(home=Path(".")).job_memory_limit_mb  # the local backend's default


def write_job(root: Path, algorithm: str, environment: dict[str, Any], seed: int = 0, **params: Any) -> Path:
    """Write ``root/input/config/hyperparameters.json`` as the local backend writes it."""
    values = {
        **params,
        "_algorithm": algorithm,
        "_task": "control",
        "_seed": seed,
        "_environment": environment,
    }
    config = root / "input" / "config" / "hyperparameters.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(encode_hyperparameters(values)))
    return root


def start(root: Path, warm: bool = True) -> launcher.JobProcess:
    """Start the program on the job folder ``root``; its log goes to ``root/training.log``."""
    previous = os.environ.get("MLOPS_WARM_JOBS")
    os.environ["MLOPS_WARM_JOBS"] = "1" if warm else "0"
    try:
        env = launcher.job_environment({"MLOPS_OPT_ML": str(root)})
        return launcher.launch(PROGRAM, env, launcher.REPOSITORY_ROOT, root / "training.log", MEMORY_LIMIT_MB)
    finally:
        if previous is None:
            os.environ.pop("MLOPS_WARM_JOBS")
        else:
            os.environ["MLOPS_WARM_JOBS"] = previous


def finish(root: Path, job: launcher.JobProcess, timeout_s: float = 240) -> int:
    """Wait for the job's exit code; on a timeout stop its process group and fail loudly."""
    try:
        return job.wait(timeout_s)
    except subprocess.TimeoutExpired:
        from mcp_server.backends.local.job_folder import kill_group

        kill_group(job)
        raise AssertionError(
            f"the job in {root} ran longer than {timeout_s} s:\n{log(root)[-3000:]}"
        ) from None


def log(root: Path) -> str:
    """The job's stdout and stderr."""
    path = root / "training.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def metrics(root: Path) -> dict[str, float]:
    """The last value of each metric line of the job's log (as the local backend parses it)."""
    return parse_metrics(log(root))


def read_json(path: Path) -> Any:
    """Parse a JSON file."""
    return json.loads(path.read_text())


def run_evaluation(root: Path, model_dir: Path, config: dict[str, Any], timeout_s: float = 120) -> int:
    """Run the evaluation program under the processing contract with ``model_dir`` mounted."""
    (root / "input" / "config").mkdir(parents=True, exist_ok=True)
    (root / "input" / "config" / "evaluation.json").write_text(json.dumps(config))
    (root / "input" / "model").symlink_to(model_dir, target_is_directory=True)
    env = launcher.job_environment({"MLOPS_PROCESSING_ROOT": str(root), "MPLBACKEND": "Agg"})
    with open(root / "evaluation.log", "wb") as out:
        return subprocess.run(
            [sys.executable, "-m", "training_containers.evaluation.evaluate"],
            cwd=launcher.REPOSITORY_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        ).returncode
