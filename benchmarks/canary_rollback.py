"""Canary with a faulty challenger: how long until traffic is back on the champion, and errors after.

Trains the demo's model (XGBoost on breast cancer, a real training job), makes a faulty copy of
it (``tests.faulty_model.FaultyClassifier``: it fails on rows whose first feature is above a
threshold, about a third of the test rows), and deploys both on a local endpoint through
``LocalEndpointBackend`` as the workflow's Deploy state does: the champion at 90 %, the challenger
at 10 % (a canary's first step). ``--clients`` (4) threads send single-row JSON requests the whole
time. The decision loop is the workflow's: after ``--interval-s`` seconds (the bake) CheckAlarms
reads the step's metrics and ``core.deployment.decisions.check_alarms`` judges them against
``rollback_on.error_rate`` (1 %); a breach applies the Rollback state's change (the champion alone
at 100 %). The load goes on for ``--after-s`` seconds after the rollback.

Prints one JSON object: ``{"interval_s", "time_to_rollback_s", "check_and_rollback_s",
"within_one_interval", "reason", "requests_before", "errors_before", "requests_after",
"errors_after"}``. ``time_to_rollback_s`` runs from the moment the faulty variant serves to the
moment the rollback's change is applied: the bake plus ``check_and_rollback_s`` (reading the
metrics and reloading the server); ``within_one_interval`` says the first check caught it and
the rollback took less than another interval. Goal (issue "Serve the model"): rolled back within
one ``interval_s``, and no error after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import joblib  # noqa: E402

from benchmarks.endpoint_throughput import train_model  # noqa: E402
from mcp_server.backends.local.endpoints import LocalEndpointBackend  # noqa: E402
from mcp_server.core.deployment.decisions import check_alarms  # noqa: E402
from mcp_server.core.deployment.models import DesiredEndpoint, ServingModel, VariantState  # noqa: E402
from mcp_server.core.spec.schema import RollbackSpec  # noqa: E402
from mcp_server.settings import Settings  # noqa: E402
from tests.faulty_model import FaultyClassifier  # noqa: E402

LABELS = ["malignant", "benign"]


def serving(folder: Path, version: str) -> ServingModel:
    """A model folder as the endpoint serves it."""
    uri = folder.as_uri()
    return ServingModel(
        model_name="bench", version=version, semantic_version=f"1.{version}.0", model_uri=uri, model_data=uri,
        class_labels=LABELS, algorithm="xgboost",
    )  # fmt: skip


class Load:
    """``clients`` threads sending rows; each answer is counted as before or after the rollback."""

    def __init__(self, backend: LocalEndpointBackend, bodies: list[bytes], clients: int) -> None:
        self.backend, self.bodies = backend, bodies
        self.after_rollback = threading.Event()
        self.stop = threading.Event()
        self.counts = {"before": [0, 0], "after": [0, 0]}  # [requests, errors]
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(clients)]

    def run(self, offset: int) -> None:
        """Send rows in turn until stopped."""
        index = offset
        while not self.stop.is_set():
            phase = "after" if self.after_rollback.is_set() else "before"
            answer = self.backend.invoke_endpoint(
                "canary", self.bodies[index % len(self.bodies)], "application/json"
            )
            with self.lock:
                self.counts[phase][0] += 1
                self.counts[phase][1] += answer.status >= 500
            index += len(self.threads)


def main() -> None:
    """Run the scenario and print its JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--interval-s", type=float, default=5.0, help="the canary step's bake, seconds")
    parser.add_argument("--after-s", type=float, default=5.0, help="load after the rollback, seconds")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="canary-bench-"))
    try:
        model = train_model(home)
        faulty = home / "faulty"
        shutil.copytree(model, faulty)
        pipeline = joblib.load(model / "model.joblib")
        joblib.dump(FaultyClassifier(pipeline, "mean radius", 15.0), faulty / "model.joblib")
        from sklearn.datasets import load_breast_cancer

        rows = load_breast_cancer(as_frame=True).frame.drop(columns="target")
        bodies = [json.dumps({"instances": [row]}).encode() for row in rows.to_dict(orient="records")]
        backend = LocalEndpointBackend(Settings(home=home))
        champion = VariantState(name="v1", model=serving(model, "1"), weight=100)
        backend.apply(DesiredEndpoint(endpoint_name="canary", variants=[champion]))
        load = Load(backend, bodies, args.clients)
        for thread in load.threads:
            thread.start()
        time.sleep(1.0)
        challenger = VariantState(name="v2", model=serving(faulty, "2"), weight=10)
        backend.apply(
            DesiredEndpoint(
                endpoint_name="canary", variants=[champion.model_copy(update={"weight": 90}), challenger]
            )
        )
        step_started = time.time()
        time.sleep(args.interval_s)  # WaitForBake
        metrics = backend.get_endpoint_metrics("canary", since=step_started)  # CheckAlarms
        check = check_alarms(metrics.variants["v2"], RollbackSpec(error_rate=0.01, p95_latency_ms=100))
        if check.breached:  # Rollback
            backend.apply(DesiredEndpoint(endpoint_name="canary", variants=[champion], action="rollback"))
        rolled_back_after = time.time() - step_started
        load.after_rollback.set()
        time.sleep(args.after_s)
        load.stop.set()
        for thread in load.threads:
            thread.join(30)
        result: dict[str, Any] = {
            "interval_s": args.interval_s,
            "time_to_rollback_s": round(rolled_back_after, 3),
            "check_and_rollback_s": round(rolled_back_after - args.interval_s, 3),
            "within_one_interval": check.breached and rolled_back_after - args.interval_s < args.interval_s,
            "reason": "; ".join(check.reasons),
            "requests_before": load.counts["before"][0],
            "errors_before": load.counts["before"][1],
            "requests_after": load.counts["after"][0],
            "errors_after": load.counts["after"][1],
        }
        backend.delete_endpoint("canary")
        print(json.dumps(result))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
