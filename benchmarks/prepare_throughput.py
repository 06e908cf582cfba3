"""Dataset preparation throughput and peak memory on a generated CSV; prints one JSON object.

``{"mb", "rows", "seconds", "mb_per_s", "peak_rss_mb", "program_seconds", "engine"}``: the
CSV's size in MB (10^6 bytes), its rows, the seconds the preparation took (load, version,
duplicates, labels, stratified split, IQR outliers, Parquet) as a whole process, its start and
imports included, the throughput over those seconds, the preparing process's peak resident
memory (``ru_maxrss`` of a child process that does only this), and the program's own
``duration_s`` (without the interpreter's start; ``--engine job`` only). The CSV has 20 numeric
columns, a categorical one and a binary label, about 170 bytes a row; ``--mb`` sets its size
(default 300).

``--engine job`` (the default) runs the preparation processing job's program
(``training_containers/preparation``, DuckDB, out of core) alone; ``--engine backend`` runs
what a local run does, ``LocalDatasetBackend.prepare_dataset``: the same program as a local
processing job (started cold, so that its peak memory is measured), then the publication of its
splits; its peak is the larger of the server's and the job's.

Goals (issue "Deploy to AWS", NFR-003): at least 28 MB/s (100 GB/hour) on one machine, and peak
memory at most 1 GB whatever the file's size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROWS_PER_CHUNK = 200_000
ENGINES = {
    "job": "the preparation program (DuckDB, out of core)",
    "backend": "local.data.LocalDatasetBackend: the program as a local processing job, then publication",
}


def write_csv(path: Path, megabytes: float, seed: int = 0) -> int:
    """Write a CSV of about ``megabytes`` MB; return its row count."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = 0
    with path.open("w", encoding="utf-8") as handle:
        while rows == 0 or path.stat().st_size < megabytes * 1e6:
            frame = pd.DataFrame(
                rng.normal(size=(ROWS_PER_CHUNK, 20)).round(5), columns=[f"x{i}" for i in range(20)]
            )
            frame["segment"] = rng.choice(["retail", "smb", "enterprise"], size=ROWS_PER_CHUNK)
            frame["label"] = (frame["x0"] + rng.normal(scale=0.5, size=ROWS_PER_CHUNK) > 0).astype(int)
            frame.to_csv(handle, index=False, header=rows == 0)
            handle.flush()
            rows += ROWS_PER_CHUNK
    return rows


def prepare(csv: str, home: str) -> None:
    """Prepare ``csv`` (the child process's work); prints the seconds and peak RSS as JSON."""
    from mcp_server.backends.local.data import LocalDatasetBackend
    from mcp_server.core.spec.schema import validate_spec
    from mcp_server.settings import Settings

    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": "xgboost",
            "dataset": {"source": f"file://{csv}", "target": "label"},
            "preprocessing": {"outliers": {"method": "iqr", "factor": 3.0}},
        }
    )
    os.environ["MLOPS_WARM_JOBS"] = "0"  # a cold job is this process's child: its peak is measured
    backend = LocalDatasetBackend(Settings(home=Path(home), data_roots=(Path(csv).parent,)), base_dir=ROOT)
    started = time.perf_counter()
    ref = backend.prepare_dataset(spec)
    seconds = time.perf_counter() - started
    peak_kib = max(
        resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    peak_mb = peak_kib / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "rows_raw": ref.rows_raw}))


def prepare_as_job(csv: str, root: str) -> None:
    """Run the preparation program on ``csv`` under the processing contract in ``root``."""
    folder = Path(root)
    (folder / "input" / "config").mkdir(parents=True)
    (folder / "input" / "data").mkdir(parents=True)
    (folder / "input" / "data" / "generated.csv").symlink_to(csv)
    config = {
        "preparation_id": "prepare-benchmark",
        "source": f"file://{csv}",
        "input": "data/generated.csv",
        "task": "classification",
        "target": "label",
        "split": {"train": 0.7, "validation": 0.15, "test": 0.15, "seed": 42, "stratify": True},
        "outliers": {"method": "iqr", "factor": 3.0},
    }
    (folder / "input" / "config" / "preparation.json").write_text(json.dumps(config))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training_containers.preparation.prepare"],
        cwd=ROOT,
        env={**os.environ, "MLOPS_PROCESSING_ROOT": root},
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    result = json.loads((folder / "output" / "dataset.json").read_text())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_mb,
                "rows_raw": result["rows_raw"],
                "program_seconds": result["duration_s"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=300.0)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="job")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (prepare_as_job if args.engine == "job" else prepare)(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data" / "generated.csv"
        csv.parent.mkdir()
        rows = write_csv(csv, args.mb)
        os.sync()  # the generated file's writeback is not the preparation's time
        size_mb = csv.stat().st_size / 1e6
        done = subprocess.run(
            [sys.executable, __file__, "--engine", args.engine, "--child", str(csv), str(Path(tmp) / "home")],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        json.dumps(
            {
                "mb": round(size_mb, 1),
                "rows": rows,
                "seconds": round(child["seconds"], 2),
                "mb_per_s": round(size_mb / child["seconds"], 1),
                "peak_rss_mb": round(child["peak_rss_mb"]),
                "program_seconds": child.get("program_seconds"),
                "engine": ENGINES[args.engine],
            }
        )
    )


if __name__ == "__main__":
    main()
