"""Wall time of a local hyperparameter tuning job with one trial at a time and with two.

Runs the same random search (``--trials`` trials, default 20) twice through the local tuning
backend, first with ``parallel_trials`` 1, then 2: every trial is a real training job (a
subprocess under the SageMaker contract, tracked in MLflow) of ``--algorithm`` (default
logistic_regression, single-threaded; xgboost uses 2 threads per job) on breast_cancer. The
fork server is warmed first, as a running server has it. Prints one JSON object:
``{"trials", "algorithm", "sequential_s", "parallel_s", "speedup", ...}``, times in seconds from
``start_tuning_job`` to the search's end (as ``describe_tuning_job`` reports it), and the
machine's 1-minute load average at the end (other work on the 2 cores skews the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The project is imported inside the functions, not here: Python 3.11's forkserver does not
# preload ``__main__`` (it looks for a ``main_path`` key that ``get_preparation_data`` names
# ``init_main_from_path``), so every job it forks runs this module's top level again.

SPACES = {
    "logistic_regression": {"C": {"type": "float", "low": 0.001, "high": 10.0, "log": True}},
    "random_forest": {"n_estimators": {"type": "int", "low": 10, "high": 60}},
    "xgboost": {
        "max_depth": {"type": "int", "low": 2, "high": 6},
        "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    },
}
STATIC = {"logistic_regression": {}, "random_forest": {}, "xgboost": {"n_estimators": 50}}


def write_channels(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train, validation = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["target"])
    channels = {}
    for split, rows in (("train", train), ("validation", validation)):
        (folder / split).mkdir(parents=True)
        rows.reset_index(drop=True).to_parquet(folder / split / "data.parquet")
        channels[split] = (folder / split).as_uri()
    return channels, {c: "numeric" for c in frame.columns if c != "target"}


def search(backend: Any, name: str, template: Any, tuning: Any) -> dict:
    from mcp_server.core.models import TuningJobRequest

    started = time.perf_counter()
    backend.start_tuning_job(TuningJobRequest(tuning_job_name=name, tuning=tuning, training=template))
    while (job := backend.describe_tuning_job(name)).status == "InProgress":
        time.sleep(0.05)
    wall = time.perf_counter() - started
    if job.status != "Completed" or any(t.status != "Completed" for t in job.trials):
        raise RuntimeError(f"{name} ended {job.status}: {job.failure_reason}")
    best = job.best()
    return {
        "wall_s": wall,
        "mean_trial_s": statistics.mean(t.duration_s or 0.0 for t in job.trials),
        "best": best.objective if best else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--algorithm", choices=sorted(SPACES), default="logistic_regression")
    args = parser.parse_args()
    from mcp_server.backends.local import launcher
    from mcp_server.backends.local.training import LocalTrainingBackend
    from mcp_server.backends.local.tuning import LocalTuningBackend
    from mcp_server.core.models import TrainingJobRequest
    from mcp_server.core.spec.schema import ComputeSpec, PreprocessingSpec, TuningSpec
    from mcp_server.settings import Settings
    from statemachine.local_runtime import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home, allow_write=True)
        channels, features = write_channels(home / "data")
        training = LocalTrainingBackend(settings)
        backend = LocalTuningBackend(settings, training)
        template = TrainingJobRequest(
            job_name="bench",
            task="classification",
            algorithm=args.algorithm,
            hyperparameters=STATIC[args.algorithm],
            preprocessing=PreprocessingSpec(),
            target="target",
            feature_types=features,
            channels=channels,
            seed=42,
            compute=ComputeSpec(max_runtime_s=600),
            experiment="benchmark",
        )
        launcher.warm_up()
        base = {"strategy": "random", "objective": "f1", "search_space": SPACES[args.algorithm]}
        # one trial first: the MLflow store and the programs' imports are warm for both runs
        search(backend, "warm", template, TuningSpec.model_validate({**base, "max_trials": 1}))
        runs = {
            parallel: search(
                backend,
                f"bench-p{parallel}",
                template,
                TuningSpec.model_validate({**base, "max_trials": args.trials, "parallel_trials": parallel}),
            )
            for parallel in (1, 2)
        }
    sequential, parallel = runs[1], runs[2]
    print(
        json.dumps(
            {
                "trials": args.trials,
                "algorithm": args.algorithm,
                "sequential_s": round(sequential["wall_s"], 2),
                "parallel_s": round(parallel["wall_s"], 2),
                "speedup": round(sequential["wall_s"] / parallel["wall_s"], 2),
                "mean_trial_s": {
                    "parallel_1": round(sequential["mean_trial_s"], 2),
                    "parallel_2": round(parallel["mean_trial_s"], 2),
                },
                "best_validation_f1": {"parallel_1": sequential["best"], "parallel_2": parallel["best"]},
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
