"""Monitoring job throughput: drift over a million captured rows of the demo's features.

Writes ``--rows`` captured rows of the demo's data (breast cancer, 30 numeric features, with
noise and a shift on ``mean radius``) as SageMaker data capture records, ``--rows-per-request``
CSV rows per request (an hour folder, one file per 10,000 requests), plus the training
baseline, under a temporary ``/opt/ml/processing``; then runs the monitoring program
(``python -m training_containers.monitoring.monitor``, the processing job both backends run)
on it as its own process, and times it.

Prints one JSON object: ``{"rows", "requests", "capture_bytes", "seconds", "rows_per_s",
"peak_rss_mb", "drifted_features"}``. ``seconds`` is the program's wall time (start to exit);
``peak_rss_mb`` its peak resident set (``getrusage`` of the child). Goal (issue "Watch and
retrain"): at most 60 s for 1,000,000 rows, at least 100x NFR-003's 10,000 rows a minute.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training_containers.evaluation.baseline import build_baseline, feature_kinds  # noqa: E402

#: Requests per capture file.
PER_FILE = 10_000


def write_job(root: Path, rows: int, per_request: int) -> tuple[int, int]:
    """The job folder: baseline, configuration and capture. Returns (requests, capture bytes)."""
    data = load_breast_cancer(as_frame=True)
    features = list(data.feature_names)
    baseline = build_baseline(data.frame, feature_kinds(data.frame, features, {}), "target", "categorical")
    (root / "input" / "baseline").mkdir(parents=True)
    (root / "input" / "baseline" / "baseline.json").write_text(json.dumps(baseline))
    now = dt.datetime.now(dt.UTC)
    config = {
        "endpoint_name": "bench",
        "since": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "until": (now + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "drift_psi": 0.2,
        "task": "classification",
    }
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "monitoring.json").write_text(json.dumps(config))
    folder = root / "input" / "capture" / "AllTraffic" / now.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = data.frame[features].to_numpy()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    requests = -(-rows // per_request)
    written = 0
    handle = None
    for request in range(requests):
        if request % PER_FILE == 0:
            if handle is not None:
                handle.close()
            handle = (folder / f"capture-{request // PER_FILE:05d}.jsonl").open("w")
        count = min(per_request, rows - request * per_request)
        block = base[rng.integers(0, len(base), count)] * rng.normal(1.0, 0.02, (count, len(features)))
        block[:, 0] *= 1.3  # mean radius drifts
        body = "\n".join(",".join(f"{v:.5g}" for v in row) for row in block)
        answer = "\n".join("1" for _ in range(count))
        line = json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": "text/csv",
                        "mode": "INPUT",
                        "data": body,
                        "encoding": "CSV",
                    },
                    "endpointOutput": {
                        "observedContentType": "text/csv",
                        "mode": "OUTPUT",
                        "data": answer,
                        "encoding": "CSV",
                    },
                },
                "eventMetadata": {"eventId": f"e{request}", "inferenceTime": stamp},
                "eventVersion": "0",
            }
        )
        handle.write(line + "\n")  # type: ignore[union-attr]
        written += len(line) + 1
    if handle is not None:
        handle.close()
    return requests, written


def main() -> None:
    """Write the capture, run the monitoring program on it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rows-per-request", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        requests, size = write_job(root, args.rows, args.rows_per_request)
        env = {**os.environ, "MLOPS_PROCESSING_ROOT": str(root), "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "training_containers.monitoring.monitor"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"the monitoring job failed:\n{done.stdout}\n{done.stderr}")
        report = json.loads((root / "output" / "report.json").read_text())
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = {
        "rows": report["rows"],
        "requests": requests,
        "capture_bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_s": round(report["rows"] / seconds),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "drifted_features": report["drifted_features"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
