"""Wall time and environment steps for PPO and A3C to reach a mean training return of 450 on CartPole-v1.

Prints one JSON object: for each algorithm, ``pipeline``, ``bare`` and ``ratio`` (pipeline_s /
bare_s), measured in the same run, one after the other (never competing for the 2 cores):

- pipeline: ``examples/issues/cartpole-{algorithm}.md`` (``stop_mean_return: 450``) through the
  local runtime, as ``pipeline_latency.py`` runs the demo: a signed webhook to the running
  ``LocalRuntime``. ``pipeline_s`` runs from sending the webhook to the end of the training job
  (when the backend writes its ``status.json``): the moment a policy that reached 450 exists.
  ``env_steps`` is the job's last ``train_env_steps`` line; ``end_to_end_s`` runs to the end of
  the execution (evaluation, judge, registration, history) and ``status`` is the execution's.
- bare: a fresh ``python benchmarks/rl_cartpole.py --bare ALGORITHM`` with the same
  hyperparameters, seed and stop rule (mean of the last 20 episodes >= 450): RLlib directly in
  the process for PPO (``ray.init`` and ``Algorithm.train()``), ``train_a3c`` for A3C, imports
  included, no checkpoints and no model folder.

Goal: ratio <= 1.2. A3C is asynchronous, so its steps and time vary from run to run; PPO with a
fixed seed samples the same episodes in both halves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 450.0
SEED = 0  # the seed the pipeline gives control jobs (no dataset split seed)


def example(algorithm: str) -> tuple[str, str, Any]:
    """The example issue's title, body and validated spec."""
    from mcp_server.core.spec.issue_form import extract_spec
    from mcp_server.core.spec.schema import validate_spec
    from statemachine.webhooks import read_issue_file

    title, body = read_issue_file(ROOT / "examples" / "issues" / f"cartpole-{algorithm}.md")
    return title, body, validate_spec(extract_spec(body, None))  # the example is one YAML block


def pipeline_run(runtime: Any, algorithm: str) -> dict[str, Any]:
    """Deliver the example issue and wait for the execution; time its training job."""
    from statemachine.webhooks import issue_payload

    title, body, _ = example(algorithm)
    issue = runtime.backends.issues.create_issue(
        title=title, body=body, author="bench", labels=["mlops:train"]
    )
    sent = time.time()
    response = runtime.deliver("issues", issue_payload(issue.number, title, body, "bench", "OWNER"))
    if not response.get("execution_arn"):
        return {"error": f"no execution started: {response}"}
    record = runtime.wait(response["execution_arn"], timeout_s=3600, poll_s=0.5)
    ended = time.time()
    jobs = sorted(
        (runtime.settings.home / "jobs").glob("*-train-a1/status.json"), key=lambda p: p.stat().st_mtime
    )
    result: dict[str, Any] = {"status": record["status"], "end_to_end_s": round(ended - sent, 2)}
    if not jobs:
        return {**result, "error": f"no training job ran: {record.get('error')}: {record.get('cause')}"}
    status = json.loads(jobs[-1].read_text())
    if status["status"] != "Completed":
        return {**result, "error": f"training job {status['status']}: {status.get('failure_reason')}"}
    trained = jobs[-1].stat().st_mtime  # status.json is written as the job ends (ended_at has whole seconds)
    return {
        **result,
        "pipeline_s": round(trained - sent, 2),
        "training_job_s": status["duration_s"],
        "env_steps": int(status["metrics"]["train_env_steps"]),
        "mean_return": status["metrics"]["train_mean_return"],
    }


def bare_run(algorithm: str) -> dict[str, Any]:
    """Run ``--bare ALGORITHM`` in a fresh interpreter; return its figures and wall time."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--bare", algorithm],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return {"bare_s": round(wall, 2), **json.loads(out.stdout.strip().splitlines()[-1])}


def bare(algorithm: str) -> dict[str, Any]:
    """Train to the goal in this process, as a script would without the pipeline."""
    from training_containers.common.program import resolve_hyperparameters
    from training_containers.rl.train import DEFAULTS, resolve_environment

    _, _, spec = example(algorithm)
    environment = resolve_environment(spec.environment.model_dump(mode="json"))
    params = resolve_hyperparameters(algorithm, dict(spec.hyperparameters), DEFAULTS[algorithm])
    if algorithm == "a3c":
        from training_containers.rl.a3c import train_a3c

        _, progress, _ = train_a3c(environment, params, SEED)
        return {"env_steps": progress.env_steps, "mean_return": progress.mean_return}
    return bare_rllib(algorithm, environment, params)


def bare_rllib(algorithm: str, environment: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """RLlib directly: ``ray.init``, ``build_algo``, ``train()`` until the 20-episode mean reaches 450."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from training_containers.rl.progress import EpisodeWindow
    from training_containers.rl.rllib_program import OBJECT_STORE_BYTES, build_config

    with tempfile.TemporaryDirectory(prefix="ray-") as temp_dir:
        ray.init(
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=OBJECT_STORE_BYTES,
            _temp_dir=temp_dir,
        )
        algo = build_config(algorithm, environment["name"], params, SEED).build_algo()
        window, steps = EpisodeWindow(), 0
        while (window.mean() or 0) < GOAL and steps < environment["total_timesteps"]:
            runners = algo.train()["env_runners"]
            count = int(runners.get("num_episodes", 0) or 0)
            if count:
                window.add(float(runners["episode_return_mean"]) * count, count)
            steps += int(runners["num_env_steps_sampled"])
        algo.stop()
        ray.shutdown()
    return {"env_steps": steps, "mean_return": window.mean()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algorithms", default="ppo,a3c")
    parser.add_argument("--bare", help="internal: train ALGORITHM bare in this process and print JSON")
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare(args.bare)))
        return
    from mcp_server.settings import Settings
    from statemachine.local_runtime import LocalRuntime

    figures: dict[str, Any] = {"goal": {"mean_return": GOAL, "ratio_at_most": 1.2}}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(environ={}, home=Path(tmp) / "home")
        with LocalRuntime(settings, ROOT, force_local_issues=True) as runtime:
            for algorithm in args.algorithms.split(","):
                try:
                    pipeline = pipeline_run(runtime, algorithm)
                except Exception as err:  # noqa: BLE001 - report the half that failed, keep measuring
                    pipeline = {"error": f"{type(err).__name__}: {err}"}
                figures[algorithm] = {"pipeline": pipeline, "bare": bare_run(algorithm)}
                both = figures[algorithm]
                if "pipeline_s" in pipeline and "bare_s" in both["bare"]:
                    both["ratio"] = round(pipeline["pipeline_s"] / both["bare"]["bare_s"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
