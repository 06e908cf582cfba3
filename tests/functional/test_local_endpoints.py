"""Local endpoints: real inference server processes on 127.0.0.1 driven by LocalEndpointBackend.

Two models trained by real local training jobs on breast cancer (XGBoost and logistic regression)
and a faulty copy of the first (it fails on large radii) are deployed, shifted, checked,
rolled back, restarted and stopped as the workflow and the CLI do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mcp_server.backends.local.endpoints import LocalEndpointBackend
from mcp_server.backends.local.training import LocalTrainingBackend
from mcp_server.core.deployment.decisions import check_alarms
from mcp_server.core.deployment.models import DesiredEndpoint, PackageRequest, ServingModel, VariantState
from mcp_server.core.spec.schema import RollbackSpec
from mcp_server.errors import EndpointError, NotFoundError
from mcp_server.server import free_port
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT, train_model, write_channels
from tests.faulty_model import FaultyClassifier

LABELS = ["malignant", "benign"]
TYPES = {"radius": "numeric", "texture": "numeric", "perimeter": "numeric", "area": "numeric"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Any:
    home = tmp_path_factory.mktemp("endpoints")
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 30]].copy()
    frame.columns = ["radius", "texture", "perimeter", "area", "target"]
    channels = write_channels(home / "data", "cancer", frame, stratify=True)
    training = LocalTrainingBackend(Settings(home=home, allow_write=True))
    blue = train_model(training, "endpoint-xgboost", "xgboost", channels, TYPES)
    green = train_model(training, "endpoint-logistic", "logistic_regression", channels, TYPES)
    faulty = home / "faulty"
    shutil.copytree(blue, faulty)
    joblib.dump(FaultyClassifier(joblib.load(blue / "model.joblib"), "radius", 17.0), faulty / "model.joblib")
    rows = pd.read_parquet(Path(channels["validation"].removeprefix("file://")) / "data.parquet")
    backend = LocalEndpointBackend(Settings(home=home, allow_write=True))
    yield {"home": home, "blue": blue, "green": green, "faulty": faulty, "rows": rows, "backend": backend}
    for endpoint in backend.list_endpoints():
        if endpoint.status != "Stopped":
            backend.delete_endpoint(endpoint.name)


def model(folder: Path, version: str, name: str = "cancer") -> ServingModel:
    return ServingModel(
        model_name=name,
        version=version,
        semantic_version=f"1.{version}.0",
        model_uri=folder.as_uri(),
        model_data=folder.as_uri(),
        class_labels=LABELS,
        algorithm="xgboost",
    )


def desired(endpoint: str, *variants: tuple[Path, str, float], **fields: Any) -> DesiredEndpoint:
    states = [
        VariantState(name=f"v{version}", model=model(folder, version), weight=weight)
        for folder, version, weight in variants
    ]
    return DesiredEndpoint(endpoint_name=endpoint, variants=states, **fields)


def state_file(world: Any, endpoint: str) -> Path:
    return world["home"] / "endpoints" / endpoint / "endpoint-state.json"


def send(backend: LocalEndpointBackend, endpoint: str, rows: pd.DataFrame, count: int) -> list[Any]:
    answers = []
    records = rows[list(TYPES)].to_dict(orient="records")
    for index in range(count):
        body = json.dumps({"instances": [records[index % len(records)]]}).encode()
        answers.append(backend.invoke_endpoint(endpoint, body, "application/json"))
    return answers


def test_a_first_deployment_starts_a_server_that_outlives_the_call_and_answers(world):
    backend = world["backend"]
    endpoint = backend.apply(desired("first", (world["blue"], "1", 100), by="alice", detail="first model"))
    assert endpoint.status == "InService"
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert [(v.name, v.weight) for v in endpoint.variants] == [("v1", 100)]
    [answer] = send(backend, "first", world["rows"], 1)
    assert answer.status == 200 and answer.variant == "v1"
    assert json.loads(answer.body)["predictions"][0] in LABELS
    [event] = endpoint.history
    assert (event.action, event.by, event.versions) == ("deploy", "alice", {"v1": "1.1.0"})
    state = json.loads(state_file(world, "first").read_text())
    os.kill(state["pid"], 0)  # a process of its own, still running


def test_traffic_shifts_are_applied_live_and_metrics_cover_each_step_only(world):
    backend = world["backend"]
    backend.apply(desired("shifting", (world["blue"], "1", 90), (world["green"], "2", 10)))
    started = time.time()
    answers = send(backend, "shifting", world["rows"], 300)
    assert all(a.status == 200 for a in answers)
    share = sum(a.variant == "v2" for a in answers) / len(answers)
    assert 0.03 < share < 0.2
    metrics = backend.get_endpoint_metrics("shifting", since=started)
    assert metrics.variants["v1"].requests + metrics.variants["v2"].requests == 300
    assert metrics.variants["v2"].p95_ms is not None and metrics.variants["v2"].error_rate == 0

    described = backend.shift_traffic("shifting", {"v1": 50, "v2": 50}, by="workflow", detail="step 2")
    assert {v.name: v.weight for v in described.variants} == {"v1": 50, "v2": 50}
    shifted = time.time()
    answers = send(backend, "shifting", world["rows"], 200)
    share = sum(a.variant == "v2" for a in answers) / len(answers)
    assert 0.35 < share < 0.65
    window = backend.get_endpoint_metrics("shifting", since=shifted)
    assert window.variants["v1"].requests + window.variants["v2"].requests == 200
    assert [e.action for e in described.history] == ["deploy", "shift"]

    with pytest.raises(EndpointError, match="has no variant v9; its variants are v1, v2"):
        backend.shift_traffic("shifting", {"v9": 100})


def test_a_faulty_challenger_breaches_the_alarm_and_the_rollback_leaves_no_errors(world):
    backend = world["backend"]
    backend.apply(desired("canary", (world["blue"], "1", 50), (world["faulty"], "3", 50)))
    started = time.time()
    send(backend, "canary", world["rows"], 200)
    metrics = backend.get_endpoint_metrics("canary", since=started)
    check = check_alarms(metrics.variants["v3"], RollbackSpec(error_rate=0.01))
    assert check.breached and "error rate" in check.reasons[0]
    assert metrics.variants["v1"].error_rate == 0

    rolled = backend.apply(
        desired("canary", (world["blue"], "1", 100), action="rollback", detail=check.reasons[0])
    )
    assert [v.name for v in rolled.variants] == ["v1"]
    after = send(backend, "canary", world["rows"], 100)
    assert {a.status for a in after} == {200}
    assert rolled.history[-1].action == "rollback"


def test_a_variant_that_does_not_load_fails_the_change_and_the_champion_keeps_serving(world, tmp_path):
    backend = world["backend"]
    backend.apply(desired("steady", (world["blue"], "1", 100)))
    with pytest.raises(EndpointError, match="is outside the workspace"):
        backend.apply(desired("steady", (tmp_path, "5", 100)))
    empty = world["home"] / "empty-model"
    empty.mkdir()
    with pytest.raises(EndpointError, match=r"refused the change: .*metadata\.json does not exist"):
        backend.apply(desired("steady", (world["blue"], "1", 50), (empty, "4", 50)))
    endpoint = backend.describe_endpoint("steady")
    assert [v.name for v in endpoint.variants] == ["v1"]
    config = json.loads((world["home"] / "endpoints" / "steady" / "endpoint.json").read_text())
    assert [v["name"] for v in config["variants"]] == ["v1"]
    assert {a.status for a in send(backend, "steady", world["rows"], 20)} == {200}


def test_an_endpoint_serving_another_model_is_not_taken_over(world):
    backend = world["backend"]
    backend.apply(desired("owned", (world["blue"], "1", 100)))
    other = DesiredEndpoint(
        endpoint_name="owned",
        variants=[VariantState(name="v1", model=model(world["green"], "1", name="churn"), weight=100)],
    )
    with pytest.raises(EndpointError, match="endpoint owned serves model cancer, not churn"):
        backend.apply(other)


def test_a_dead_server_shows_failed_and_restarts_on_its_port(world):
    backend = world["backend"]
    first = backend.apply(desired("phoenix", (world["green"], "2", 100)))
    state_path = state_file(world, "phoenix")
    pid = json.loads(state_path.read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while backend.describe_endpoint("phoenix").status != "Failed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "mlops serve starts it again" in backend.describe_endpoint("phoenix").failure_reason
    restarted = {e.name: e for e in backend.restart_endpoints()}
    assert restarted["phoenix"].status == "InService", restarted["phoenix"].failure_reason
    assert restarted["phoenix"].url == first.url
    assert {a.status for a in send(backend, "phoenix", world["rows"], 5)} == {200}


def test_a_port_taken_by_another_program_is_named(world):
    backend = world["backend"]
    backend.apply(desired("squatted", (world["green"], "2", 100)))
    state_path = state_file(world, "squatted")
    state = json.loads(state_path.read_text())
    os.killpg(state["pid"], signal.SIGKILL)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:  # the killed server releases its socket a moment after it is gone
            try:
                squatter.bind(("127.0.0.1", state["port"]))
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        squatter.listen()
        [endpoint] = [e for e in backend.restart_endpoints() if e.name == "squatted"]
    assert endpoint.status == "Failed"
    assert f"port {state['port']} of endpoint squatted is in use" in endpoint.failure_reason


def test_stopping_an_endpoint_ends_its_process_and_keeps_its_history(world):
    backend = world["backend"]
    backend.apply(desired("brief", (world["blue"], "1", 100)))
    state = json.loads(state_file(world, "brief").read_text())
    stopped = backend.delete_endpoint("brief", by="bob")
    assert stopped.status == "Stopped" and stopped.url == ""
    assert [e.action for e in stopped.history] == ["deploy", "delete"]
    with pytest.raises(EndpointError, match="cannot be reached"):
        backend.invoke_endpoint("brief", b"1,2,3,4", "text/csv")
    assert not Path(f"/proc/{state['pid']}/cmdline").read_bytes()  # gone (at most a zombie of this test)
    with pytest.raises(NotFoundError, match="no endpoint named nowhere"):
        backend.describe_endpoint("nowhere")


def test_packaging_writes_a_hadolint_clean_dockerfile_and_the_openapi_document(world):
    folder = world["home"] / "models" / "cancer" / "1"
    shutil.copytree(world["blue"], folder)
    files = world["backend"].package_model(PackageRequest(model=model(folder, "1")))
    dockerfile = Path(files.dockerfile_uri.removeprefix("file://"))
    assert dockerfile.parent == folder / "package"
    text = dockerfile.read_text()
    assert "USER 10001" in text and "COPY --from=model . /opt/ml/model/" in text
    assert "xgboost-cpu==" in (folder / "package" / "requirements.txt").read_text()
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    document = json.loads((folder / "package" / "openapi.json").read_text())
    assert document["openapi"].startswith("3.")
    schema = json.dumps(document)
    assert all(feature in schema for feature in TYPES)


def test_the_cli_lists_describes_invokes_rolls_back_and_stops_endpoints(world, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from statemachine.cli import UserMistake, app

    backend = world["backend"]
    monkeypatch.setenv("MLOPS_HOME", str(world["home"]))
    from rich.console import Console

    import statemachine.cli

    monkeypatch.setattr(statemachine.cli, "console", Console(width=200))
    backend.apply(desired("cli", (world["blue"], "1", 100)))
    backend.apply(desired("cli", (world["blue"], "1", 80), (world["green"], "2", 20)))
    runner = CliRunner()

    listed = runner.invoke(app, ["endpoints"])
    assert listed.exit_code == 0, listed.output
    assert "cli" in listed.output and "1.2.0" in listed.output and "InService" in listed.output

    rows = tmp_path / "rows.csv"
    world["rows"][list(TYPES)].head(3).to_csv(rows, index=False)
    answered = runner.invoke(app, ["invoke", "cli", str(rows), "--variant", "v2"])
    assert answered.exit_code == 0, answered.output
    assert "3 prediction(s) from variant v2" in answered.output
    assert sum(label in answered.output for label in LABELS) >= 1

    shown = runner.invoke(app, ["endpoints", "cli"])
    assert (
        shown.exit_code == 0
        and "Production variants" in shown.output
        and "Recent deployments" in shown.output
    )

    rolled = runner.invoke(app, ["endpoints", "rollback", "cli"])
    assert rolled.exit_code == 0, rolled.output
    assert "rolled back to 1.1.0" in rolled.output
    assert [v.name for v in backend.describe_endpoint("cli").variants] == ["v1"]

    for arguments, message in [
        (["endpoints", "nowhere"], "no endpoint named nowhere"),
        (["endpoints", "rollback", "cli", "--version", "7.7.7"], "never served version 7.7.7"),
        (["invoke", "cli", str(tmp_path / "missing.csv")], "cannot read"),
        (["endpoints", "stop"], "name the endpoint"),
    ]:
        mistake = runner.invoke(app, arguments)
        assert isinstance(mistake.exception, UserMistake), (arguments, mistake.output)
        assert message in str(mistake.exception)
    bad = tmp_path / "bad.json"
    bad.write_text('{"instances": [[1, 2]]}')
    refused = runner.invoke(app, ["invoke", "cli", str(bad)])
    assert isinstance(refused.exception, UserMistake) and "answered 400" in str(refused.exception)

    stopped = runner.invoke(app, ["endpoints", "stop", "cli"])
    assert stopped.exit_code == 0 and "Stopped" in stopped.output
    assert backend.describe_endpoint("cli").status == "Stopped"


def test_mlops_serve_restarts_the_endpoints_whose_server_is_gone(world):
    backend = world["backend"]
    before = backend.apply(desired("revived", (world["green"], "2", 100)))
    os.killpg(json.loads(state_file(world, "revived").read_text())["pid"], signal.SIGKILL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(MLOPS_HOME=str(world["home"]), COLUMNS="200", NO_COLOR="1")
    port = free_port()
    serve = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlops")), "serve", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = serve.stdout.readline() if serve.stdout else ""
            lines.append(line)
            if "Endpoint revived restarted" in line or not line:
                break
        assert any(f"Endpoint revived restarted: {before.url}" in line for line in lines), lines
        assert backend.describe_endpoint("revived").status == "InService"
        assert {a.status for a in send(backend, "revived", world["rows"], 3)} == {200}
    finally:
        serve.terminate()
        serve.wait(30)


def test_system_metrics_are_sampled_over_time_and_plotted_by_the_monitoring_job(world, tmp_path):
    from training_containers.monitoring import system

    backend = world["backend"]
    backend.apply(desired("sampled", (world["blue"], "1", 50), (world["green"], "2", 50)))
    assert "sampled" not in backend.record_system_metrics()  # the first look keeps the counters only
    taken = []
    for count in (40, 0, 25):
        send(backend, "sampled", world["rows"], count)
        time.sleep(0.3)
        taken.append(backend.record_system_metrics()["sampled"])
    assert [s.requests for s in taken] == [40, 0, 25]  # each sample covers its own window only
    assert backend.system_metrics("sampled") == taken
    assert taken[0].p95_ms is not None and taken[1].p95_ms is None and taken[1].rps == 0
    assert taken[0].rps == pytest.approx(40 / taken[0].window_s, rel=0.01)
    assert all(s.memory_mb is not None and s.memory_mb > 10 for s in taken)  # a Python server's MiB
    assert all(s.cpu_percent is not None and s.cpu_percent >= 0 for s in taken)
    assert taken[0].cpu_percent > taken[1].cpu_percent  # 40 predictions cost more than none

    # the monitoring job reads the same file over its window and plots it
    folder = world["home"] / "system_metrics" / "sampled"
    (folder / "samples.jsonl").open("a").write("not json\n")
    read, skipped = system.read_samples(folder, None, "2999-01-01T00:00:00Z")
    assert [s["requests"] for s in read] == [40, 0, 25] and skipped == 1
    found = system.summary(read)
    assert found["requests"] == 65 and found["samples"] == 3 and found["max_memory_mb"] > 10
    assert system.plot(tmp_path, read) == {"system_metrics": "plots/system_metrics.png"}
    assert (tmp_path / "plots" / "system_metrics.png").stat().st_size > 10_000
    assert "- Requests: 65, 5xx answers: 0" in system.markdown(found)
    backend.delete_endpoint("sampled")
    assert "sampled" not in backend.record_system_metrics()  # stopped: not sampled
