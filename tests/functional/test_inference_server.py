"""The inference server as a real process on 127.0.0.1, serving models trained by real training jobs.

Two production variants of one endpoint: ``blue`` (XGBoost, weight 3) and ``green`` (logistic
regression, weight 1), trained by LocalTrainingBackend on breast cancer with a categorical column
added, with data capture at 100 %.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT, train_model, write_channels

LABELS = ["malignant", "benign"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(config: Path, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "training_containers.inference.serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError("the server did not answer /ping")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Any:
    home = tmp_path_factory.mktemp("serving")
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 30]].copy()
    frame.columns = ["radius", "texture", "perimeter", "area", "target"]
    frame.insert(4, "clinic", np.random.default_rng(0).choice(["north", "south"], len(frame)))
    channels = write_channels(home / "data", "cancer", frame, stratify=True)
    types = {
        "radius": "numeric",
        "texture": "numeric",
        "perimeter": "numeric",
        "area": "numeric",
        "clinic": "categorical",
    }
    backend = LocalTrainingBackend(Settings(home=home, allow_write=True))
    blue = train_model(backend, "serve-xgboost", "xgboost", channels, types)
    green = train_model(backend, "serve-logistic", "logistic_regression", channels, types)
    config = home / "endpoint.json"
    config.write_text(
        json.dumps(
            {
                "endpoint_name": "cancer",
                "variants": [
                    {
                        "name": "blue",
                        "model_dir": str(blue),
                        "weight": 3,
                        "model_version": "1.0.0",
                        "class_labels": LABELS,
                    },
                    {
                        "name": "green",
                        "model_dir": str(green),
                        "weight": 1,
                        "model_version": "1.1.0",
                        "class_labels": LABELS,
                    },
                ],
                "capture_root": str(home / "capture"),
                "sampling_percentage": 100,
            }
        )
    )
    port = free_port()
    process = start_server(config, port)
    rows = pd.read_parquet(Path(channels["validation"].removeprefix("file://")) / "data.parquet")
    yield {
        "url": f"http://127.0.0.1:{port}",
        "rows": rows,
        "blue": blue,
        "green": green,
        "home": home,
        "config": config,
    }
    process.terminate()
    process.wait(10)


def invoke(served: Any, body: Any, variant: str | None = None, **headers: str) -> httpx.Response:
    if variant:
        headers["X-Amzn-SageMaker-Target-Variant"] = variant
    if isinstance(body, (bytes, str)):
        return httpx.post(f"{served['url']}/invocations", content=body, headers=headers, timeout=10)
    return httpx.post(f"{served['url']}/invocations", json=body, headers=headers, timeout=10)


def test_json_rows_get_the_pipelines_own_predictions_with_labels_and_probabilities(served):
    rows = served["rows"].drop(columns=["target"]).head(25)
    pipeline = joblib.load(served["blue"] / "model.joblib")
    expected = [LABELS[c] for c in pipeline.predict(rows)]
    by_order = invoke(served, {"instances": rows.values.tolist()}, variant="blue")
    by_name = invoke(served, {"instances": rows.to_dict(orient="records")}, variant="blue")
    for response in (by_order, by_name):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"] == expected
        assert body["variant"] == "blue" and body["model_version"] == "1.0.0"
        np.testing.assert_allclose(body["probabilities"], pipeline.predict_proba(rows), atol=1e-6)
    assert response.headers["x-variant"] == "blue"


def test_csv_rows_with_or_without_a_header_and_a_csv_answer(served):
    rows = served["rows"].drop(columns=["target"]).head(5)
    pipeline = joblib.load(served["green"] / "model.joblib")
    expected = [LABELS[c] for c in pipeline.predict(rows)]
    plain = rows.to_csv(index=False, header=False)
    with_header = rows.to_csv(index=False)
    for text in (plain, with_header):
        response = invoke(served, text, variant="green", **{"Content-Type": "text/csv", "Accept": "text/csv"})
        assert response.status_code == 200, response.text
        assert response.text.splitlines() == expected


def test_a_missing_value_is_imputed_by_the_pipeline(served):
    row = {"radius": None, "texture": 20.0, "perimeter": 90.0, "area": 600.0, "clinic": None}
    response = invoke(served, {"instances": [row]}, variant="blue")
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0] in LABELS


def test_traffic_is_split_by_weight_and_a_named_variant_is_honoured(served):
    row = served["rows"].drop(columns=["target"]).head(1).values.tolist()
    seen = [invoke(served, {"instances": row}).json()["variant"] for _ in range(400)]
    share = seen.count("blue") / len(seen)
    assert 0.66 < share < 0.84  # weight 3 of 4: 0.75, within about 4 standard deviations
    assert {invoke(served, {"instances": row}, variant="green").json()["variant"] for _ in range(5)} == {
        "green"
    }


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (
            {"instances": [[1.0, 2.0, 3.0]]},
            {},
            "row 1 has 3 values; the model takes 5 features: radius, texture",
        ),
        (
            {"instances": [[1, 2, 3, "x", "north"]]},
            {},
            "row 1, feature 'area' (numeric): 'x' is not a number",
        ),
        (
            b'{"instances": [[1, 2, 3, 4, "north"], [1, 2, 3, 1e999, "south"]]}',
            {},
            "row 2, feature 'area' (numeric): 'Infinity' is not a finite",
        ),
        (
            {"instances": [{"radius": 1, "weight": 2}]},
            {},
            "row 1 names features the model does not take: 'weight'",
        ),
        ({"instances": [[1, 2, 3, 4, {"a": 1}]]}, {}, "row 1, feature 'clinic' (categorical)"),
        ({"rows": []}, {}, 'a JSON body is {"instances": [row, ...]}'),
        ({"instances": []}, {}, "the request has no rows"),
        ({"instances": [[1, 2, 3, 4, "n"]] * 10_001}, {}, "at most 10000 are accepted"),
        (b"{not json", {}, "the body is not JSON"),
        (b"\xff\xfe", {}, "the body is not UTF-8"),
        (
            b"1,2,3,4,north",
            {"Content-Type": "application/x-npy"},
            "Content-Type 'application/x-npy' is not supported",
        ),
        (
            b"1,2,3,4,north",
            {"X-Amzn-SageMaker-Target-Variant": "red", "Content-Type": "text/csv"},
            "TargetVariant 'red' is not a variant",
        ),
        ({"instances": [[10**400, 2, 3, 4, "n"]]}, {}, "feature 'radius' (numeric)"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_problem(served, body, headers, message):
    response = invoke(served, body, **headers)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_a_body_over_the_payload_limit_is_refused_without_being_read(served):
    response = invoke(served, b"1" * (6 * 1024 * 1024 + 1), **{"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert "at most 6291456 are accepted" in response.json()["error"]


def test_metrics_count_each_variants_answers_and_latency(served):
    before = httpx.get(f"{served['url']}/metrics").text
    row = served["rows"].drop(columns=["target"]).head(1).values.tolist()
    for _ in range(3):
        invoke(served, {"instances": row}, variant="green")
    invoke(served, {"instances": [[1]]}, variant="green")
    after = httpx.get(f"{served['url']}/metrics").text

    def value(text: str, series: str) -> float:
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    ok = 'endpoint_responses_total{endpoint="cancer",status="2xx",variant="green"}'
    bad = 'endpoint_responses_total{endpoint="cancer",status="4xx",variant="green"}'
    count = 'endpoint_latency_seconds_count{endpoint="cancer",variant="green"}'
    assert value(after, ok) - value(before, ok) == 3
    assert value(after, bad) - value(before, bad) == 1
    assert value(after, count) - value(before, count) == 4
    assert 'endpoint_latency_seconds_bucket{endpoint="cancer",le="0.01",variant="green"}' in after


def test_captured_requests_are_sagemaker_capture_records_by_variant_and_hour(served):
    rows = served["rows"].drop(columns=["target"]).head(2).values.tolist()
    response = invoke(served, {"instances": rows}, variant="blue")
    event = json.dumps({"instances": rows}, separators=(",", ":"))
    folder = served["home"] / "capture" / "cancer" / "blue"
    deadline = time.monotonic() + 10
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        files = sorted(folder.rglob("*.jsonl"))
        records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
        if any(r["captureData"]["endpointInput"]["data"] == event for r in records):
            break
        time.sleep(0.1)
    match = [r for r in records if r["captureData"]["endpointInput"]["data"] == event]
    assert len(match) == 1, f"{len(records)} records, none of this request"
    record = match[0]
    assert record["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert record["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert json.loads(record["captureData"]["endpointOutput"]["data"]) == response.json()
    assert record["eventVersion"] == "0" and len(record["eventMetadata"]["eventId"]) == 36
    stamp = record["eventMetadata"]["inferenceTime"]
    relative = files[0].relative_to(folder).parts
    assert relative[:4] == (stamp[:4], stamp[5:7], stamp[8:10], stamp[11:13])  # yyyy/mm/dd/hh
    assert not (served["home"] / "capture" / "cancer" / "-").exists()  # refused requests are not captured


def test_openapi_document_and_docs_page_describe_the_models_inputs(served):
    document = httpx.get(f"{served['url']}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    schema = document["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    row = schema["properties"]["instances"]["items"]["oneOf"][0]
    assert list(row["properties"]) == ["radius", "texture", "perimeter", "area", "clinic"]
    assert row["properties"]["clinic"]["anyOf"][0] == {"type": "string"}
    assert row["properties"]["radius"]["anyOf"][0] == {"type": "number"}
    response_schema = document["paths"]["/invocations"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert response_schema["properties"]["predictions"]["items"]["enum"] == LABELS
    page = httpx.get(f"{served['url']}/docs").text
    assert "/openapi.json" in page and "swagger-ui" in page


def test_a_configuration_that_cannot_be_served_exits_2_with_the_reason(served, tmp_path):
    broken = tmp_path / "endpoint.json"
    broken.write_text(
        json.dumps({"endpoint_name": "x", "variants": [{"name": "a", "model_dir": str(tmp_path / "none")}]})
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training_containers.inference.serve",
            "--config",
            str(broken),
            "--port",
            str(free_port()),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "serve: cannot start:" in done.stderr and "metadata.json does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_port_in_use_stops_the_server_with_the_reason(served):
    port = int(served["url"].rsplit(":", 1)[1])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training_containers.inference.serve",
            "--config",
            str(served["config"]),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "address already in use" in done.stderr
    assert httpx.get(f"{served['url']}/ping").status_code == 200  # the running endpoint keeps serving


def test_a_reload_shifts_traffic_and_switches_fleets_without_a_failed_request(served, tmp_path):
    import threading

    config = tmp_path / "endpoint.json"

    def write(*variants: tuple[str, Path, float]) -> None:
        body = [{"name": n, "model_dir": str(d), "weight": w, "class_labels": LABELS} for n, d, w in variants]
        config.write_text(json.dumps({"endpoint_name": "switch", "variants": body}))

    write(("blue", served["blue"], 1))
    port = free_port()
    process = start_server(config, port)
    url = f"http://127.0.0.1:{port}"
    row = {"instances": served["rows"].drop(columns=["target"]).head(1).values.tolist()}
    answers: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                sent = time.monotonic()
                response = client.post(f"{url}/invocations", json=row)
                answers.append((sent, response.status_code, response.headers.get("x-variant", "")))

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        steps = [
            ((("blue", served["blue"], 9), ("green", served["green"], 1)), {"blue": 9, "green": 1}),  # canary
            ((("blue", served["blue"], 1), ("green", served["green"], 1)), {"blue": 1, "green": 1}),
            ((("green", served["green"], 1),), {"green": 1}),  # the new fleet alone: blue is removed
        ]
        switched = 0.0
        for variants, weights in steps:
            write(*variants)
            reloaded = httpx.post(f"{url}/admin/reload", timeout=30)
            switched = time.monotonic()
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json() == {"variants": weights}
            time.sleep(0.7)
        write(("green", served["green"], 1), ("red", Path(tmp_path / "no-model"), 1))
        refused = httpx.post(f"{url}/admin/reload", timeout=30)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        process.terminate()
        process.wait(10)
    assert refused.status_code == 400
    assert "not reloaded, the previous configuration serves" in refused.json()["error"]
    assert len(answers) > 100 and {status for _, status, _ in answers} == {200}  # no request failed
    assert {variant for _, _, variant in answers} == {"blue", "green"}
    late = [variant for sent, _, variant in answers if sent > switched]
    assert late and set(late) == {"green"}  # sent after the switch (and the refused reload): green only
