"""Concurrent runs on one workspace: nothing lost, every version distinct, and how long it takes.

Two modes, each on a fresh workspace and the same issue (examples/issues/wine-logistic-regression.md,
so every run registers a version of the same model):

- **runtime** (default): one local runtime, as ``mlops serve`` runs it. ``single_s`` is one
  issue from its webhook to its end, on its own workspace; ``concurrent_s`` is ``--issues`` (10)
  issues delivered at once on a fresh workspace, until the last one ends. ``ratio`` =
  concurrent_s / single_s.
- **processes** (``--processes``): the same with ``mlops run`` processes started at once on one
  fresh workspace (each its own runtime, engine and MCP server).

Both print one JSON object ``{"mode", "issues", "single_s", "concurrent_s", "ratio",
"single_cpu_s", "concurrent_cpu_s", "cores", "ratio_floor", "succeeded", "records", "commits",
"distinct_versions", "distinct_semantic_versions"}``. The counts are read back from the
workspace: execution records, history files, git commits and the MLflow registry.

The CPU figures are the machine's busy CPU-seconds (``/proc/stat``: every process, the jobs
included; ``null`` where there is no ``/proc``) over each phase. ``ratio_floor`` =
(concurrent_cpu_s / cores) / single_s is the lowest ratio this machine allows for that work:
the ratio if the concurrent phase had kept every core busy all along. When ``ratio`` is near
``ratio_floor``, the runs wait on CPU, not on each other.

Goals (issue "Sound footing"): ratio <= 4 in runtime mode; succeeded, records, commits and both
distinct counts equal to ``issues``.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp_server.backends.local.mlflow_store import open_client  # noqa: E402
from mcp_server.settings import Settings  # noqa: E402
from statemachine.local_runtime import LocalRuntime  # noqa: E402
from statemachine.webhooks import issue_payload, read_issue_file  # noqa: E402

ISSUE = ROOT / "examples" / "issues" / "wine-logistic-regression.md"
MODEL = "wine-classification"


def busy_cpu_s() -> float | None:
    """CPU-seconds the whole machine has spent busy since boot (``/proc/stat``); None without it.

    Busy is every state but idle and iowait, summed over cores (proc(5), "/proc/stat").
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def cpu_since(before: float | None) -> float | None:
    """The machine's busy CPU-seconds since the reading ``before`` (None if either is unknown)."""
    after = busy_cpu_s()
    return None if before is None or after is None else after - before


def through_one_runtime(home: Path, issues: int) -> tuple[float, float | None]:
    """Deliver ``issues`` issues at once to one runtime on ``home``.

    Returns:
        Seconds until all ended, and the machine's busy CPU-seconds meanwhile (the runtime's
        start-up is in neither).
    """
    title, body = read_issue_file(ISSUE)
    settings = Settings.from_env(environ={}, home=home)
    with LocalRuntime(settings, ROOT, force_local_issues=True, command="bench") as runtime:
        store = runtime.backends.issues  # type: ignore[union-attr]
        cpu = busy_cpu_s()
        started = time.perf_counter()
        arns = []
        for _ in range(issues):
            issue = store.create_issue(title=title, body=body, author="bench", labels=["mlops:train"])
            answer = runtime.deliver("issues", issue_payload(issue.number, title, body, "bench", "OWNER"))
            arns.append(answer["execution_arn"])
        for arn in arns:
            runtime.wait(arn, timeout_s=1800, until_waiting=False)
        return time.perf_counter() - started, cpu_since(cpu)


def through_processes(home: Path, issues: int) -> tuple[float, float | None]:
    """Start ``issues`` ``mlops run`` processes at once on ``home``.

    Returns:
        Seconds until all ended, and the machine's busy CPU-seconds meanwhile.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(MLOPS_HOME=str(home))
    mlops = str(Path(sys.executable).with_name("mlops"))
    cpu = busy_cpu_s()
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [mlops, "run", str(ISSUE)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(issues)
    ]
    for process in processes:
        process.wait(timeout=1800)
    return time.perf_counter() - started, cpu_since(cpu)


def outcome(home: Path) -> dict[str, int]:
    """What the workspace holds after the runs (records, commits, versions)."""
    records = [json.loads(p.read_text()) for p in (home / "executions").glob("*.json")]
    history = list((home / "repository" / "training_history").glob("*-issue-*.md"))
    log = subprocess.run(
        ["git", "-C", str(home / "repository"), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    client = open_client(Settings.from_env(environ={}, home=home))
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return {
        "succeeded": sum(r["status"] == "SUCCEEDED" for r in records),
        "records": len(history),
        "commits": sum(line.startswith("training history: issue #") for line in log),
        "distinct_versions": len({v.version for v in versions}),
        "distinct_semantic_versions": len({v.tags.get("semantic_version") for v in versions}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=10)
    parser.add_argument("--processes", action="store_true", help="run `mlops run` processes")
    parser.add_argument(
        "--no-single", action="store_true", help="skip the single run (no single_s, no ratio)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = through_processes if args.processes else through_one_runtime
        single_s, single_cpu_s = (None, None) if args.no_single else run(Path(tmp) / "single", 1)
        concurrent_s, concurrent_cpu_s = run(Path(tmp) / "concurrent", args.issues)
        figures = outcome(Path(tmp) / "concurrent")
    cores = os.cpu_count() or 1
    print(
        json.dumps(
            {
                "mode": "processes" if args.processes else "runtime",
                "issues": args.issues,
                "single_s": None if single_s is None else round(single_s, 2),
                "concurrent_s": round(concurrent_s, 2),
                "ratio": None if single_s is None else round(concurrent_s / single_s, 2),
                "single_cpu_s": _round(single_cpu_s),
                "concurrent_cpu_s": _round(concurrent_cpu_s),
                "cores": cores,
                "ratio_floor": None
                if single_s is None or concurrent_cpu_s is None
                else round(concurrent_cpu_s / cores / single_s, 2),
                **figures,
            }
        )
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


if __name__ == "__main__":
    main()
