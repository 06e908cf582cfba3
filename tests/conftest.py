"""Shared fixtures: one local runtime per test session (moto's backends are process-global)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples" / "issues"
EVENTS = Path(__file__).resolve().parent / "events"


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A started LocalRuntime (MCP server, engine, recorder, handler) on a fresh workspace."""
    from statemachine.local_runtime import LocalRuntime

    home = tmp_path_factory.mktemp("mlops-home")
    settings = Settings.from_env(environ={}, home=home)
    local = LocalRuntime(settings, REPO_ROOT, force_local_issues=True, serve_deliveries=True).start()
    yield local
    local.stop()


def open_issue(runtime: Any, example: str | None = None, body: str | None = None, title: str = "test") -> Any:
    """Create a local issue from an example file (or a body) and return its IssueRef."""
    from statemachine.webhooks import read_issue_file

    if example is not None:
        title, body = read_issue_file(EXAMPLES / example)
    return runtime.backends.issues.create_issue(
        title=title, body=body or "", author="alice", labels=["mlops:train"]
    )


def load_event(name: str) -> dict[str, Any]:
    """A recorded webhook payload from tests/events/."""
    return json.loads((EVENTS / name).read_text())


def executions(runtime: Any) -> list[dict[str, Any]]:
    """Every execution the engine knows."""
    client = runtime.engine.client()
    return client.list_executions(stateMachineArn=runtime.engine.state_machine_arn)["executions"]


def wait_quiet(runtime: Any, timeout_s: float = 300) -> None:
    """Wait until no execution is working (so tests do not compete for the 2 cores).

    An execution waiting for its operator's reply uses no CPU and may wait for days (a test
    that failed before replying leaves one), so it does not count as working.
    """
    deadline = time.monotonic() + timeout_s
    while any(
        e["status"] == "RUNNING" and runtime.waiting_run(e["executionArn"]) is None
        for e in executions(runtime)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("executions still running")
        time.sleep(0.2)


def make_model_folder(folder: Path, ref: Any, estimator: Any, algorithm: str) -> Path:
    """A model folder as the training jobs write it (model.joblib + metadata.json), for ``ref``."""
    import joblib
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from mcp_server.backends.local.data import path_from_uri

    train = pd.read_parquet(path_from_uri(ref.splits["train"]) / "data.parquet")
    pipeline = Pipeline(
        [
            ("preprocessor", ColumnTransformer([("numeric", StandardScaler(), ref.feature_names)])),
            ("estimator", estimator),
        ]
    ).fit(train[ref.feature_names], train[ref.target])
    folder.mkdir(parents=True)
    joblib.dump(pipeline, folder / "model.joblib")
    metadata = {
        "algorithm": algorithm,
        "task": ref.task,
        "target": ref.target,
        "feature_names": ref.feature_names,
        "feature_types": ref.feature_types,
        "n_classes": len(ref.class_labels or []) or None,
        "hyperparameters": estimator.get_params(),
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, default=str))
    return folder


def write_channels(root: Path, name: str, frame: Any, stratify: bool) -> dict[str, str]:
    """Write 75/25 train/validation splits as ``<root>/<name>/<split>/data.parquet``.

    Returns:
        Channel name (train, validation) -> folder URI, as training jobs take them.
    """
    from sklearn.model_selection import train_test_split

    train, validation = train_test_split(
        frame, test_size=0.25, random_state=42, stratify=frame["target"] if stratify else None
    )
    channels = {}
    for split, rows in (("train", train), ("validation", validation)):
        folder = root / name / split
        folder.mkdir(parents=True)
        rows.reset_index(drop=True).to_parquet(folder / "data.parquet")
        channels[split] = folder.as_uri()
    return channels


TRAINING_TIMEOUT_S = 180


def train_model(
    backend: Any, name: str, algorithm: str, channels: dict[str, str], types: dict[str, str]
) -> Path:
    """Train a classifier on ``channels`` with a LocalTrainingBackend; return its model folder."""
    from mcp_server.core.models import TrainingJobRequest
    from mcp_server.core.spec.schema import ComputeSpec, PreprocessingSpec

    request = TrainingJobRequest(
        job_name=name,
        task="classification",
        algorithm=algorithm,
        hyperparameters={},
        preprocessing=PreprocessingSpec(),
        target="target",
        feature_types=types,
        channels=channels,
        compute=ComputeSpec(max_runtime_s=TRAINING_TIMEOUT_S),
        experiment="serving",
        tags={"issue": "10", "spec_hash": name},
    )
    backend.start_training_job(request)
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    while (job := backend.describe_training_job(name)).status == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job.status == "Completed", job.failure_reason
    return Path(job.model_uri.removeprefix("file://"))
