"""Local endpoints: one inference server process per endpoint on 127.0.0.1.

Each endpoint has a folder ``{home}/endpoints/{name}/``:

- ``endpoint.json``: what the server serves (``training_containers.inference.serve``'s
  ``EndpointConfig``: variants, model folders, weights, data capture);
- ``endpoint-state.json``: the endpoint's description, the server's pid and port;
- ``deployments.jsonl``: its deployment history, one ``DeploymentEvent`` a line;
- ``metrics-snapshots.json``: the server's counters at each change, so a traffic step's metrics
  cover the requests made during it;
- ``server.log``: the server's output.

``record_system_metrics`` (each tick of ``mlops serve``'s scheduler) appends one
``SystemSample`` per endpoint in service to ``{home}/system_metrics/{endpoint}/samples.jsonl``:
latency percentiles, RPS, errors, CPU and memory since the previous sample (FR-021); the
monitoring job plots them over its window.

The server outlives the command that started it (its own session); ``restart_endpoints`` starts
again the servers of endpoints that should be in service (``mlops serve`` calls it). A change of
variants or weights is written to ``endpoint.json`` and applied by ``POST /admin/reload``: new
models load while the old ones serve, then the switch is atomic. A change the server refuses
restores the previous ``endpoint.json``, and the endpoint keeps serving what it served. Data
capture goes to ``{home}/capture/{endpoint}/{variant}/yyyy/mm/dd/hh/``, as SageMaker lays it out
under its S3 prefix.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_server.backends.base import EndpointBackend
from mcp_server.backends.local.data import path_from_uri
from mcp_server.backends.local.files import exclusive, write_json_atomic, write_text_atomic
from mcp_server.backends.packaging import package_files
from mcp_server.backends.replay import replay_rows
from mcp_server.core.deployment.metrics import (
    MetricsSnapshot,
    SystemSample,
    parse_prometheus,
    system_sample,
    window,
)
from mcp_server.core.deployment.models import (
    DeploymentEvent,
    DesiredEndpoint,
    EndpointDescription,
    EndpointMetrics,
    InvocationResult,
    ModelPackageFiles,
    PackageRequest,
    ReplaySummary,
    ServingModel,
    VariantState,
    event_for,
    served_after,
)
from mcp_server.errors import EndpointError, NotFoundError
from mcp_server.settings import Settings

#: Seconds a new server has to answer ``/ping`` (models load before it listens).
START_TIMEOUT_S = 120.0
#: Seconds a restart waits for its port to be released by a server that just exited.
PORT_WAIT_S = 3.0
#: Seconds an HTTP call to a local server may take.
HTTP_TIMEOUT_S = 30.0
#: Deployment events kept in a description (the file keeps them all).
HISTORY_SHOWN = 50
#: Metrics snapshots kept per endpoint.
SNAPSHOTS_KEPT = 100
#: Bytes of system-metrics samples kept per endpoint (about 40,000 samples: 2 weeks at 30 s); an
#: older half is dropped when the file grows past it.
SYSTEM_SAMPLES_MAX_BYTES = 10 * 2**20


class LocalEndpointBackend(EndpointBackend):
    """Endpoints as local inference server processes (see the module docstring).

    Args:
        settings: the workspace (``settings.home``).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._root = settings.home / "endpoints"

    # -- packaging ------------------------------------------------------------------------------

    def package_model(self, request: PackageRequest) -> ModelPackageFiles:
        """Write ``package/`` (Dockerfile, requirements.txt, openapi.json) in the version's folder.

        Raises:
            EndpointError: the version's folder has no readable ``metadata.json``.
        """
        model = self._resolved(request.model)
        folder = self._workspace_path(model.model_data, "model_data")
        metadata = request.metadata if request.metadata is not None else _read_metadata(folder)
        target = folder / "package"
        files = package_files(request, metadata)
        for name, text in files.items():
            write_text_atomic(target / name, text)
        return ModelPackageFiles(
            dockerfile_uri=(target / "Dockerfile").as_uri(),
            openapi_uri=(target / "openapi.json").as_uri(),
            requirements_uri=(target / "requirements.txt").as_uri(),
            image_uri=f"{model.model_name.lower()}:{model.semantic_version or model.version}",
            requirements=files["requirements.txt"].split(),
        )

    # -- changes ----------------------------------------------------------------------------------

    def apply(self, desired: DesiredEndpoint) -> EndpointDescription:
        """Serve ``desired``'s variants: start the endpoint's server, or reload the running one.

        Raises:
            EndpointError: the endpoint serves another registered model; a model does not load;
                the server does not answer ``/ping`` (its log's last lines are quoted); the
                endpoint's port is taken by another program.
        """
        desired = desired.model_copy(
            update={
                "variants": [
                    v.model_copy(update={"model": self._resolved(v.model)}) for v in desired.variants
                ]
            }
        )
        name = desired.endpoint_name
        model_name = desired.variants[0].model.model_name
        with self._lock(name):
            record = self._read_record(name)
            if record is not None and record["status"] != "Stopped" and record["model_name"] != model_name:
                raise EndpointError(
                    f"endpoint {name} serves model {record['model_name']}, not {model_name}; "
                    "set deployment.endpoint_name to another name, or stop it (mlops endpoints stop "
                    f"{name})"
                )
            self._serve(name, desired, record)
            record = self._read_record(name) or {}
            record.update(model_name=model_name, status="InService", failure_reason="")
            record["variants"] = [v.model_dump(mode="json") for v in desired.variants]
            record["served"] = _served(record, desired.variants)
            self._write_record(name, record)
            self._snapshot(name)
            self._append(name, _event(desired.action, desired.variants, desired.by, desired.detail))
            return self._describe(name)

    def shift_traffic(
        self, endpoint_name: str, weights: dict[str, float], by: str = "", detail: str = ""
    ) -> EndpointDescription:
        """Set the variants' weights by reloading the server with the new ``endpoint.json``.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: a weight names an unknown variant, the weights are not usable, or the
                server refused the change.
        """
        with self._lock(endpoint_name):
            record = self._require(endpoint_name)
            variants = [VariantState.model_validate(v) for v in record["variants"]]
            unknown = sorted(set(weights) - {v.name for v in variants})
            if unknown:
                raise EndpointError(
                    f"endpoint {endpoint_name} has no variant {', '.join(unknown)}; "
                    f"its variants are {', '.join(v.name for v in variants)}"
                )
            variants = [v.model_copy(update={"weight": weights.get(v.name, v.weight)}) for v in variants]
            desired = DesiredEndpoint(
                endpoint_name=endpoint_name,
                variants=variants,
                data_capture_percent=record.get("data_capture_percent", 100),
                action="shift",
                by=by,
                detail=detail,
            )
            self._serve(endpoint_name, desired, record)
            record["variants"] = [v.model_dump(mode="json") for v in variants]
            self._write_record(endpoint_name, record)
            self._snapshot(endpoint_name)
            self._append(endpoint_name, _event("shift", variants, by, detail))
            return self._describe(endpoint_name)

    def replay_split(
        self, endpoint_name: str, split_uri: str, feature_names: list[str], target_variant: str, max_rows: int
    ) -> ReplaySummary:
        """Read ``data.parquet`` of the split's folder and send its rows to ``target_variant``.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the split cannot be read, or the server cannot be reached.
        """
        import pandas as pd

        self._require(endpoint_name)
        path = self._workspace_path(split_uri, "split_uri") / "data.parquet"
        try:
            frame = pd.read_parquet(path, columns=feature_names)
        except (OSError, ValueError, KeyError) as err:
            raise EndpointError(f"cannot read the validation rows {path}: {err}") from err
        return replay_rows(
            frame,
            feature_names,
            lambda body: self.invoke_endpoint(
                endpoint_name, body, "application/json", target_variant=target_variant
            ),
            max_rows,
        )

    def record_event(self, endpoint_name: str, event: DeploymentEvent) -> None:
        """Append ``event`` to ``deployments.jsonl``."""
        with self._lock(endpoint_name):
            self._require(endpoint_name)
            self._append(endpoint_name, event)

    def delete_endpoint(self, endpoint_name: str, by: str = "") -> EndpointDescription:
        """Stop the server; the folder (history, logs) and the captured data stay.

        The endpoint then shows as ``Stopped`` and its name may serve another model.

        Raises:
            NotFoundError: no such endpoint.
        """
        with self._lock(endpoint_name):
            record = self._require(endpoint_name)
            _stop_process(record.get("pid"))
            record.update(status="Stopped", pid=None)
            self._write_record(endpoint_name, record)
            variants = [VariantState.model_validate(v) for v in record["variants"]]
            self._append(endpoint_name, _event("delete", variants, by, "server stopped"))
            return self._describe(endpoint_name)

    def restart_endpoints(self) -> list[EndpointDescription]:
        """Start again the server of every endpoint in service whose process is gone.

        Returns:
            The endpoints restarted (a server that fails to start is left ``Failed``, with why).
        """
        restarted = []
        for name in self._names():
            with self._lock(name):
                record = self._read_record(name)
                if record is None or record["status"] == "Stopped" or _alive(record.get("pid")):
                    continue
                try:
                    self._start(name, record)
                    record = self._read_record(name) or record
                    record.update(status="InService", failure_reason="")
                except EndpointError as err:
                    record.update(status="Failed", failure_reason=str(err))
                self._write_record(name, record)
                restarted.append(self._describe(name))
        return restarted

    # -- reads ------------------------------------------------------------------------------------

    def describe_endpoint(self, endpoint_name: str) -> EndpointDescription:
        """Return the endpoint; a server process that is gone makes it ``Failed``.

        Raises:
            NotFoundError: no such endpoint.
        """
        self._require(endpoint_name)
        return self._describe(endpoint_name)

    def list_endpoints(self) -> list[EndpointDescription]:
        """Return every local endpoint, by name, stopped ones included."""
        return [self._describe(name) for name in self._names()]

    def get_endpoint_metrics(self, endpoint_name: str, since: float | None = None) -> EndpointMetrics:
        """Read the server's ``/metrics`` and subtract the last snapshot taken at or before ``since``.

        Without ``since`` the window is the server's life (from its start), so RPS is its average.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the server is not running or does not answer.
        """
        record = self._require(endpoint_name)
        current = self._scrape(endpoint_name, record)
        earlier = None
        if since is not None:
            earlier = next(
                (s for s in reversed(self._snapshots(endpoint_name)) if s.at <= since),
                MetricsSnapshot(at=since),
            )
        else:
            with contextlib.suppress(KeyError, ValueError):
                earlier = MetricsSnapshot(at=datetime.fromisoformat(record["started_at"]).timestamp())
        return EndpointMetrics(
            endpoint_name=endpoint_name,
            at=current.at,
            window_s=current.at - earlier.at if earlier is not None else None,
            variants=window(current, earlier),
        )

    def record_system_metrics(self) -> dict[str, SystemSample]:
        """Append one system-metrics sample per endpoint in service (see the module).

        The first look at a server only keeps its counters: a sample covers the time since the
        previous look. A server that does not answer is skipped (its endpoint says why).

        Returns:
            The samples written, by endpoint name.
        """
        written = {}
        for name in self._names():
            record = self._read_record(name) or {}
            if record.get("status") != "InService" or not _alive(record.get("pid")):
                continue
            try:
                current = self._scrape(name, record)
            except EndpointError:
                continue
            folder = self._settings.home / "system_metrics" / name
            last_path = folder / "last-snapshot.json"
            earlier = None
            with contextlib.suppress(OSError, ValueError):
                earlier = MetricsSnapshot.model_validate_json(last_path.read_text())
            write_json_atomic(last_path, current.model_dump())
            if earlier is None or earlier.at >= current.at:
                continue
            sample = system_sample(current, earlier)
            samples = folder / "samples.jsonl"
            with samples.open("a") as handle:
                handle.write(sample.model_dump_json() + "\n")
            if samples.stat().st_size > SYSTEM_SAMPLES_MAX_BYTES:
                lines = samples.read_text().splitlines(keepends=True)
                write_text_atomic(samples, "".join(lines[len(lines) // 2 :]))
            written[name] = sample
        return written

    def system_metrics(self, endpoint_name: str) -> list[SystemSample]:
        """Every kept system-metrics sample of an endpoint, oldest first (unreadable lines skipped)."""
        path = self._settings.home / "system_metrics" / endpoint_name / "samples.jsonl"
        found = []
        for line in path.read_text().splitlines() if path.is_file() else []:
            with contextlib.suppress(ValueError):
                found.append(SystemSample.model_validate_json(line))
        return found

    def invoke_endpoint(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str,
        accept: str = "application/json",
        target_variant: str | None = None,
    ) -> InvocationResult:
        """POST ``body`` to the server's ``/invocations``; a 4xx or 5xx answer is returned as is.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the server cannot be reached.
        """
        record = self._require(endpoint_name)
        headers = {"Content-Type": content_type, "Accept": accept}
        if target_variant:
            headers["X-Amzn-SageMaker-Target-Variant"] = target_variant
        request = urllib.request.Request(  # noqa: S310 - the URL is our own server on 127.0.0.1
            f"{_url(record)}/invocations", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                return _result(response.status, response.read(), response.headers)
        except urllib.error.HTTPError as err:
            return _result(err.code, err.read(), err.headers)
        except (urllib.error.URLError, OSError) as err:
            raise EndpointError(
                f"endpoint {endpoint_name} at {_url(record)} cannot be reached: {err}"
            ) from err

    def _resolved(self, model: ServingModel) -> ServingModel:
        """The model with ``model_data`` set: the registry's copy ``models/{name}/{version}/``.

        A given ``model_data`` must be a folder inside the workspace: a server unpickles what it
        loads, so a path elsewhere is refused.

        Raises:
            EndpointError: the version has no registered files, or ``model_data`` is outside the
                workspace.
        """
        if model.model_data:
            self._workspace_path(model.model_data, "model_data")
            return model
        folder = self._settings.home / "models" / model.model_name / model.version
        if not (folder / "metadata.json").is_file():
            raise EndpointError(
                f"{model.model_name} version {model.version} has no registered files at {folder}; "
                "register it first"
            )
        return model.model_copy(update={"model_data": folder.as_uri()})

    def _workspace_path(self, uri: str, what: str) -> Path:
        """The local path of a ``file://`` URI inside the workspace.

        A server unpickles the models it loads, and validation traffic reads the rows it sends,
        so paths elsewhere are refused.

        Raises:
            EndpointError: not a ``file://`` URI, or outside the workspace.
        """
        try:
            path = path_from_uri(uri).resolve()
        except ValueError as err:
            raise EndpointError(f"{what} {uri!r} is not a file:// URI of the workspace") from err
        if not path.is_relative_to(self._settings.home.resolve()):
            raise EndpointError(
                f"{what} {uri} is outside the workspace {self._settings.home}; local endpoints read "
                "their workspace's files only (leave model_data empty for the registered version's files)"
            )
        return path

    # -- the server process -----------------------------------------------------------------------

    def _serve(self, name: str, desired: DesiredEndpoint, record: dict[str, Any] | None) -> None:
        """Write ``endpoint.json`` and start or reload the server; restore the old file on failure."""
        config_path = self._folder(name) / "endpoint.json"
        previous = config_path.read_text() if config_path.is_file() else None
        write_json_atomic(config_path, self._server_config(desired))
        running = record is not None and record.get("status") != "Stopped" and _alive(record.get("pid"))
        try:
            if running:
                assert record is not None
                self._reload(name, record)
            else:
                fresh: dict[str, Any] = record if record is not None else {"port": None}
                fresh["data_capture_percent"] = desired.data_capture_percent
                self._start(name, fresh)
        except EndpointError:
            if previous is not None:
                write_text_atomic(config_path, previous)
            else:
                config_path.unlink(missing_ok=True)
            raise
        saved = self._read_record(name) or {}
        saved["data_capture_percent"] = desired.data_capture_percent
        self._write_record(name, saved)

    def _server_config(self, desired: DesiredEndpoint) -> dict[str, Any]:
        capture = desired.data_capture_percent > 0
        return {
            "endpoint_name": desired.endpoint_name,
            "variants": [
                {
                    "name": v.name,
                    "model_dir": str(path_from_uri(v.model.model_data)),
                    "weight": v.weight,
                    "model_version": v.model.semantic_version or v.model.version,
                    "class_labels": v.model.class_labels,
                }
                for v in desired.variants
            ],
            "capture_root": str(self._settings.home / "capture") if capture else None,
            "sampling_percentage": desired.data_capture_percent if capture else 0.0,
        }

    def _start(self, name: str, record: dict[str, Any]) -> None:
        """Start the server on the record's port (a free one the first time) and wait for /ping."""
        port = record.get("port") or _free_port()
        deadline = time.monotonic() + PORT_WAIT_S  # a server just killed may still hold it
        while not _port_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _port_free(port):
            raise EndpointError(
                f"port {port} of endpoint {name} is in use by another program; stop it, or stop the "
                f"endpoint (mlops endpoints stop {name}) and deploy again for a new port"
            )
        folder = self._folder(name)
        log_path = folder / "server.log"
        command = [
            sys.executable, "-m", "training_containers.inference.serve",
            "--config", str(folder / "endpoint.json"), "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own module, no shell
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the endpoint outlives the command that deployed it
                cwd=Path(__file__).resolve().parents[3],
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EndpointError(
                    f"the server of endpoint {name} exited with status {process.returncode}: "
                    f"{_tail(log_path)}"
                )
            if _ping(url):
                record.update(pid=process.pid, port=port, url=url, started_at=datetime.now(UTC).isoformat())
                self._write_record(name, {**(self._read_record(name) or {}), **record})
                return
            time.sleep(0.1)
        _stop_process(process.pid)
        raise EndpointError(
            f"the server of endpoint {name} did not answer /ping within {START_TIMEOUT_S:.0f} s"
        )

    def _reload(self, name: str, record: dict[str, Any]) -> None:
        request = urllib.request.Request(f"{_url(record)}/admin/reload", data=b"", method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=START_TIMEOUT_S):  # noqa: S310
                return
        except urllib.error.HTTPError as err:
            reason = err.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, TypeError):
                reason = json.loads(reason)["error"]
            raise EndpointError(f"endpoint {name} refused the change: {reason}") from err
        except (urllib.error.URLError, OSError) as err:
            raise EndpointError(f"endpoint {name} cannot be reached to change it: {err}") from err

    def _scrape(self, name: str, record: dict[str, Any]) -> MetricsSnapshot:
        if record.get("status") == "Stopped":
            raise EndpointError(f"endpoint {name} is stopped; it has no live metrics")
        try:
            with urllib.request.urlopen(f"{_url(record)}/metrics", timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                text = response.read().decode()
        except (urllib.error.URLError, OSError) as err:
            raise EndpointError(f"endpoint {name} at {_url(record)} does not answer /metrics: {err}") from err
        return parse_prometheus(text, time.time(), endpoint=name)

    def _snapshot(self, name: str) -> None:
        """Keep the server's counters now, so the next step's window starts here."""
        record = self._read_record(name) or {}
        try:
            snapshot = self._scrape(name, record)
        except EndpointError:
            return
        kept = [*self._snapshots(name), snapshot][-SNAPSHOTS_KEPT:]
        write_json_atomic(self._folder(name) / "metrics-snapshots.json", [s.model_dump() for s in kept])

    def _snapshots(self, name: str) -> list[MetricsSnapshot]:
        path = self._folder(name) / "metrics-snapshots.json"
        if not path.is_file():
            return []
        try:
            return [MetricsSnapshot.model_validate(s) for s in json.loads(path.read_text())]
        except ValueError:
            return []

    # -- records ----------------------------------------------------------------------------------

    def _describe(self, name: str) -> EndpointDescription:
        record = self._read_record(name)
        if record is None:
            raise NotFoundError(f"no endpoint named {name}")
        status, reason = record.get("status", "Failed"), record.get("failure_reason", "")
        if status == "InService" and not _alive(record.get("pid")):
            status = "Failed"
            reason = reason or (
                f"its server process is not running (see {self._folder(name) / 'server.log'}); "
                "mlops serve starts it again"
            )
        return EndpointDescription(
            name=name,
            target="local",
            status=status,
            url=_url(record) if status != "Stopped" else "",
            model_name=record.get("model_name", ""),
            variants=[VariantState.model_validate(v) for v in record.get("variants", [])],
            failure_reason=reason,
            history=self._history(name)[-HISTORY_SHOWN:],
            served_models=[ServingModel.model_validate(m) for m in record.get("served", [])],
            data_capture_percent=record.get("data_capture_percent", 0.0),
        )

    def _history(self, name: str) -> list[DeploymentEvent]:
        path = self._folder(name) / "deployments.jsonl"
        if not path.is_file():
            return []
        events = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                events.append(DeploymentEvent.model_validate_json(line))
        return events

    def _append(self, name: str, event: DeploymentEvent) -> None:
        with (self._folder(name) / "deployments.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(event.model_dump_json() + "\n")

    def _folder(self, name: str) -> Path:
        folder = self._root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _names(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(p.parent.name for p in self._root.glob("*/endpoint-state.json"))

    def _read_record(self, name: str) -> dict[str, Any] | None:
        path = self._root / name / "endpoint-state.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as err:
            raise EndpointError(
                f"{path} is not readable JSON ({err}); remove it to forget the endpoint"
            ) from err

    def _write_record(self, name: str, record: dict[str, Any]) -> None:
        write_json_atomic(self._folder(name) / "endpoint-state.json", record)

    def _require(self, name: str) -> dict[str, Any]:
        record = self._read_record(name)
        if record is None:
            known = ", ".join(self._names()) or "none"
            raise NotFoundError(f"no endpoint named {name} (endpoints: {known})")
        return record

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        with exclusive(self._root / f".{name}.lock"):
            yield


def _served(record: dict[str, Any], variants: list[VariantState]) -> list[dict[str, Any]]:
    served = [ServingModel.model_validate(m) for m in record.get("served", [])]
    return [m.model_dump(mode="json") for m in served_after(served, variants)]


def _read_metadata(folder: Path) -> dict[str, Any]:
    path = folder / "metadata.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise EndpointError(f"cannot read {path}: {err}") from err


def _event(action: Any, variants: list[VariantState], by: str, detail: str) -> DeploymentEvent:
    return event_for(action, variants, datetime.now(UTC).isoformat(timespec="seconds"), by, detail)


def _result(status: int, body: bytes, headers: Any) -> InvocationResult:
    return InvocationResult(
        status=status,
        body=body.decode("utf-8", "replace"),
        content_type=headers.get("Content-Type", "") if headers is not None else "",
        variant=headers.get("X-Variant", "") if headers is not None else "",
    )


def _url(record: dict[str, Any]) -> str:
    return record.get("url") or f"http://127.0.0.1:{record.get('port')}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running inference server (not a reused pid or a zombie)."""
    if not pid:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return status != "Z" and b"training_containers.inference.serve" in cmdline.read_bytes()
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _stop_process(pid: int | None, timeout_s: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL it after ``timeout_s`` seconds."""
    if not _alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` (as uvicorn binds: with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no log)"
