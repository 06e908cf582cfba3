"""The benchmark scripts still run and print their JSON figures (the figures are not asserted).

Marked ``benchmark`` (only ``make test-all`` runs them), except the concurrency check, which
asserts what concurrent ``mlops run`` processes must not lose.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def run_benchmark(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark
def test_webhook_latency_prints_its_percentiles():
    figures = run_benchmark(
        "benchmarks/webhook_latency.py",
        "--requests",
        "20",
        "--rounds",
        "1",
        "--concurrency",
        "2",
        "--interval",
        "0",
        "--wait",
    )
    assert figures["requests"] == 20 and figures["concurrent_requests"] == 2
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert 0 < figures["concurrent_p50_ms"] <= figures["concurrent_p95_ms"] <= figures["concurrent_max_ms"]
    assert figures["runs_s"] > 0


@pytest.mark.benchmark
def test_pipeline_latency_prints_the_pipeline_and_bare_times():
    figures = run_benchmark("benchmarks/pipeline_latency.py", "--runs", "1")
    assert figures["pipeline_s"] > 0
    assert figures["bare_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["pipeline_s"] / figures["bare_s"], abs=0.01)


@pytest.mark.benchmark
def test_tuning_prints_the_sequential_and_parallel_wall_times():
    figures = run_benchmark("benchmarks/tuning.py", "--trials", "1")
    assert figures["trials"] == 1
    assert figures["sequential_s"] > 0 and figures["parallel_s"] > 0
    # the script rounds the times and the speed-up separately
    assert figures["speedup"] == pytest.approx(figures["sequential_s"] / figures["parallel_s"], rel=0.05)


@pytest.mark.benchmark
def test_rl_cartpole_prints_pipeline_and_bare_figures_for_a3c():
    figures = run_benchmark("benchmarks/rl_cartpole.py", "--algorithms", "a3c")
    a3c = figures["a3c"]
    assert a3c["pipeline"]["status"] == "SUCCEEDED"
    assert a3c["pipeline"]["env_steps"] > 0 and a3c["bare"]["env_steps"] > 0
    assert a3c["ratio"] == pytest.approx(a3c["pipeline"]["pipeline_s"] / a3c["bare"]["bare_s"], rel=0.05)


@pytest.mark.slow
def test_concurrent_mlops_run_processes_lose_nothing_and_share_no_version():
    figures = run_benchmark("benchmarks/concurrency.py", "--processes", "--issues", "2", "--no-single")
    assert figures["mode"] == "processes" and figures["issues"] == 2
    assert figures["succeeded"] == figures["records"] == figures["commits"] == 2
    assert figures["distinct_versions"] == figures["distinct_semantic_versions"] == 2
    assert figures["single_s"] is None and figures["concurrent_s"] > 0


@pytest.mark.benchmark
def test_endpoint_throughput_prints_ours_against_the_bare_server():
    figures = run_benchmark("benchmarks/endpoint_throughput.py", "--seconds", "1", "--skip-mlflow")
    for server in ("ours", "bare"):
        assert figures[server]["rps"] > 0 and figures[server]["non_2xx"] == 0
        assert 0 < figures[server]["p50_ms"] <= figures[server]["p95_ms"] <= figures[server]["p99_ms"]
    assert figures["ours"]["captured"] >= figures["ours"]["requests"]  # capture at 100 %, warm-up included
    assert figures["blue_green"]["switches"] >= 1 and figures["blue_green"]["non_2xx"] == 0
    ratio = figures["ours"]["rps"] / figures["bare"]["rps"]
    assert figures["ratio_vs_bare"] == pytest.approx(ratio, abs=0.01)


@pytest.mark.benchmark
def test_canary_rollback_catches_the_faulty_challenger_at_the_first_check():
    figures = run_benchmark(
        "benchmarks/canary_rollback.py", "--interval-s", "2", "--after-s", "1", "--clients", "2"
    )
    assert figures["within_one_interval"] and "error rate" in figures["reason"]
    assert figures["errors_before"] > 0 and figures["errors_after"] == 0 and figures["requests_after"] > 0
