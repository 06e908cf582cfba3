"""Requests per second and latency of the inference server against a bare server and MLflow's.

Trains the demo's model (XGBoost on breast cancer, a real training job through
LocalTrainingBackend), then serves it three ways on 127.0.0.1, one after another:

- **ours**: ``training_containers.inference.serve`` with two production variants of the model
  (weights 1 and 1), data capture at 100 % and the Prometheus metrics on;
- **bare**: a Starlette/uvicorn server that parses the JSON rows into numpy and calls
  ``Booster.inplace_predict`` (no validation, no preprocessing, no capture, no metrics);
- **mlflow**: ``mlflow models serve`` of the same pipeline (``--env-manager local``), unless
  ``--skip-mlflow``.

Each gets ``--clients`` (8) concurrent clients, one asyncio process apart from the server,
sending single-row JSON for ``--seconds`` (10) after a warm-up. Then **blue_green**: the same
load on our server while its fleet is switched every second (``POST /admin/reload``). Prints
one JSON object: ``{"ours": {"rps", "p50_ms", "p95_ms", "p99_ms", "non_2xx", "captured"},
"bare": {...}, "mlflow": {...}, "blue_green": {"switches", "requests", "non_2xx", "p95_ms"},
"ratio_vs_mlflow", "ratio_vs_bare"}`` (ratios of requests per second).

Goals (issue "Serve the model"): at least 20x mlflow's requests per second, at least 90 % of the
bare server's, p95 at most 10 ms, and no answer other than 2xx during a blue/green switch.
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from mcp_server.server import free_port  # noqa: E402

LABELS = ["malignant", "benign"]

BARE_SERVER = """
import json, sys, joblib, numpy as np, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
booster = joblib.load(sys.argv[1]).steps[-1][1].get_booster()
async def invocations(request):
    rows = np.asarray(json.loads(await request.body())["instances"], dtype=float)
    body = json.dumps({"predictions": booster.inplace_predict(rows).tolist()})
    return Response(body, media_type="application/json")
async def ping(request):
    return Response(status_code=200)
app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]), Route("/ping", ping)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


def train_model(home: Path) -> Path:
    """Train the demo's XGBoost model with a real training job; return its model folder."""
    from sklearn.datasets import load_breast_cancer

    from mcp_server.backends.local.training import LocalTrainingBackend
    from mcp_server.core.models import TrainingJobRequest
    from mcp_server.core.spec.schema import ComputeSpec, PreprocessingSpec
    from mcp_server.settings import Settings
    from tests.conftest import write_channels

    frame = load_breast_cancer(as_frame=True).frame
    channels = write_channels(home / "data", "cancer", frame, stratify=True)
    backend = LocalTrainingBackend(Settings(home=home, allow_write=True))
    request = TrainingJobRequest(
        job_name="endpoint-benchmark",
        task="classification",
        algorithm="xgboost",
        hyperparameters={},
        preprocessing=PreprocessingSpec(),
        target="target",
        feature_types={c: "numeric" for c in frame.columns if c != "target"},
        channels=channels,
        compute=ComputeSpec(max_runtime_s=600),
        experiment="endpoint-benchmark",
        tags={"issue": "benchmark", "spec_hash": "benchmark"},
    )
    backend.start_training_job(request)
    while (job := backend.describe_training_job(request.job_name)).status == "InProgress":
        time.sleep(0.3)
    if job.status != "Completed":
        raise SystemExit(f"training failed: {job.failure_reason}")
    return Path(job.model_uri.removeprefix("file://"))


def serve_command(config: Path, port: int) -> list[str]:
    """The command line of our inference server for ``config`` on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "training_containers.inference.serve", "--config", str(config)] + [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def start(command: list[str], port: int, timeout_s: float = 120) -> subprocess.Popen[bytes]:
    """Start a server process and wait until ``/ping`` answers 200."""
    # mlflow models serve starts uvicorn by name: the venv's bin on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PATH": path}
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"{command[:4]} exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit(f"{command[:4]} did not answer /ping within {timeout_s} s")


async def load(url: str, bodies: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent clients (aiohttp, keep-alive) posting the bodies in turn for ``seconds``."""
    import aiohttp

    latencies: list[float] = []
    failures = 0

    async def client(offset: int, http: aiohttp.ClientSession, until: float, record: bool) -> None:
        nonlocal failures
        index = offset
        while time.perf_counter() < until:
            body = bodies[index % len(bodies)]
            index += clients
            started = time.perf_counter()
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                await response.read()
            if record:
                latencies.append(time.perf_counter() - started)
                failures += response.status >= 300

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm_until = time.perf_counter() + 2
        await asyncio.gather(*(client(i, http, warm_until, False) for i in range(clients)))
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(client(i, http, until, True) for i in range(clients)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "requests": len(latencies),
        "non_2xx": failures,
    }


def measure(command: list[str], port: int, bodies: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Start a server, load it with single-row JSON bodies from a separate process, stop it; the figures."""
    process = start(command, port)
    try:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--client",
                f"http://127.0.0.1:{port}/invocations",
                "--clients",
                str(clients),
                "--seconds",
                str(seconds),
            ],
            input=json.dumps(bodies),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        bodies = json.loads(sys.stdin.read())
        print(json.dumps(asyncio.run(load(args.client, bodies, args.clients, args.seconds))))
        return
    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer().data[:100].round(4).tolist()
    bodies = [json.dumps({"instances": [row]}) for row in rows]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        model = train_model(home)
        config = home / "endpoint.json"
        variants = [
            {
                "name": name,
                "model_dir": str(model),
                "weight": 1,
                "model_version": "1.0.0",
                "class_labels": LABELS,
            }
            for name in ("blue", "green")
        ]
        config.write_text(
            json.dumps(
                {
                    "endpoint_name": "benchmark",
                    "variants": variants,
                    "capture_root": str(home / "capture"),
                    "sampling_percentage": 100,
                }
            )
        )
        results: dict[str, Any] = {}
        port = free_port()
        results["ours"] = measure(serve_command(config, port), port, bodies, args.clients, args.seconds)
        captured = sum(len(f.read_text().splitlines()) for f in (home / "capture").rglob("*.jsonl"))
        results["ours"]["captured"] = captured
        results["blue_green"] = measure_switches(home, model, bodies, args.clients, args.seconds)
        port = free_port()
        bare = [sys.executable, "-c", BARE_SERVER, str(model / "model.joblib"), str(port)]
        results["bare"] = measure(bare, port, bodies, args.clients, args.seconds)
        if not args.skip_mlflow:
            results["mlflow"] = measure_mlflow(home, model, rows, args.clients, args.seconds)
    results["ratio_vs_bare"] = round(results["ours"]["rps"] / results["bare"]["rps"], 3)
    if "mlflow" in results:
        results["ratio_vs_mlflow"] = round(results["ours"]["rps"] / results["mlflow"]["rps"], 1)
    print(json.dumps(results))


def measure_switches(
    home: Path, model: Path, bodies: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    """Blue/green under load: the load of ``measure`` while the fleet is switched every second.

    Each switch rewrites ``endpoint.json`` with the other fleet alone (``blue`` or ``green``)
    and calls ``POST /admin/reload``; the load counts the answers that were not 2xx.
    """
    config = home / "switch.json"

    def write(name: str) -> None:
        variant = {"name": name, "model_dir": str(model), "weight": 1, "class_labels": LABELS}
        config.write_text(json.dumps({"endpoint_name": "switch", "variants": [variant]}))

    write("blue")
    port = free_port()
    process = start(serve_command(config, port), port)
    try:
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", f"http://127.0.0.1:{port}/invocations"]
            + ["--clients", str(clients), "--seconds", str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None
        client.stdin.write(json.dumps(bodies))
        client.stdin.close()
        switches, fleet = 0, "blue"
        until = time.monotonic() + seconds + 2  # the client warms up for 2 s first
        while time.monotonic() < until - 1:
            time.sleep(1)
            fleet = "green" if fleet == "blue" else "blue"
            write(fleet)
            switches += httpx.post(f"http://127.0.0.1:{port}/admin/reload", timeout=30).status_code == 200
        assert client.stdout is not None
        figures = json.loads(client.stdout.read())
        client.wait(60)
    finally:
        process.terminate()
        process.wait(30)
    return {
        "switches": switches,
        "requests": figures["requests"],
        "non_2xx": figures["non_2xx"],
        "p95_ms": figures["p95_ms"],
    }


def measure_mlflow(
    home: Path, model: Path, rows: list[list[float]], clients: int, seconds: float
) -> dict[str, Any]:
    """Save the pipeline as an MLflow model and measure ``mlflow models serve`` on it.

    MLflow's scoring server takes a frame's rows as ``{"dataframe_records": [{column: value}]}``.
    """
    import joblib
    import mlflow.sklearn

    saved = home / "mlflow-model"
    mlflow.sklearn.save_model(
        joblib.load(model / "model.joblib"),
        str(saved),
        serialization_format="cloudpickle",
        pip_requirements=[],
    )
    port = free_port()
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow_cli,
        "models",
        "serve",
        "-m",
        str(saved),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "--env-manager",
        "local",
    ]
    names = json.loads((model / "metadata.json").read_text())["feature_names"]
    bodies = [json.dumps({"dataframe_records": [dict(zip(names, row, strict=True))]}) for row in rows]
    return measure(command, port, bodies, clients, seconds)


if __name__ == "__main__":
    main()
