"""Wall time of the demo through the pipeline vs a bare script doing the same work.

Prints one JSON object: ``{"pipeline_s", "bare_s", "ratio", ...}``.
- pipeline_s: from sending the signed webhook of examples/issues/breast-cancer-xgboost.md to the
  history commit (the RecordHistory state's exit), with the local runtime already serving (as
  ``mlops serve`` is), median of ``--runs`` runs.
- bare_s: a fresh ``python benchmarks/bare_training.py`` (imports, training, evaluation, plots),
  median of the same number of runs.
Goal (issue "One labelled issue runs end to end"): pipeline_s <= 20 and ratio <= 2.5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp_server.settings import Settings  # noqa: E402
from statemachine.local_runtime import LocalRuntime  # noqa: E402
from statemachine.webhooks import issue_payload, read_issue_file  # noqa: E402


def pipeline_run(runtime: LocalRuntime, title: str, body: str) -> float:
    issue = runtime.backends.issues.create_issue(
        title=title, body=body, author="bench", labels=["mlops:train"]
    )
    sent = time.time()
    response = runtime.deliver("issues", issue_payload(issue.number, title, body, "bench", "OWNER"))
    record = runtime.wait(response["execution_arn"], timeout_s=600, poll_s=0.1)
    if record["status"] != "SUCCEEDED":
        raise RuntimeError(f"the demo run failed: {record.get('error')}: {record.get('cause')}")
    committed = next(s["exited_at"] for s in record["states"] if s["name"] == "RecordHistory")
    return datetime.fromisoformat(committed).timestamp() - sent


def bare_run(out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bare_training.py"), str(out)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    title, body = read_issue_file(ROOT / "examples" / "issues" / "breast-cancer-xgboost.md")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(environ={}, home=Path(tmp) / "home")
        startup = time.perf_counter()
        with LocalRuntime(settings, ROOT, force_local_issues=True) as runtime:
            startup_s = time.perf_counter() - startup
            pipeline = [pipeline_run(runtime, title, body) for _ in range(args.runs)]
        bare = [bare_run(Path(tmp)) for _ in range(args.runs)]
    pipeline_s, bare_s = statistics.median(pipeline), statistics.median(bare)
    print(
        json.dumps(
            {
                "pipeline_s": round(pipeline_s, 2),
                "bare_s": round(bare_s, 2),
                "ratio": round(pipeline_s / bare_s, 2),
                "pipeline_runs_s": [round(p, 2) for p in pipeline],
                "bare_runs_s": [round(b, 2) for b in bare],
                "runtime_startup_s": round(startup_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
