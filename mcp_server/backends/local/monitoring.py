"""Local monitoring: the monitoring job as a local processing job, and its records in the workspace.

Under ``settings.home``:

- ``capture/{endpoint}/``: what the endpoint's server captured (read, never written, here);
- ``ground_truth/{endpoint}/yyyy/mm/dd/hh/{uuid}.jsonl``: labels, one batch a file, in
  SageMaker's ground-truth format;
- ``system_metrics/{endpoint}/samples.jsonl``: the endpoint's system metrics over time
  (``LocalEndpointBackend.record_system_metrics``), mounted as the job's ``system`` input;
- ``monitoring/{endpoint}/schedule.json`` and ``state.json``: the endpoint's monitoring
  schedule and what the monitor remembers (incidents, the last window);
- ``monitoring/{endpoint}/jobs/{job}/``: each job's folder (``processing_job``): its inputs
  linked, ``output/`` (the Model Monitor files, ``report.json``, ``report.md``, ``plots/``),
  ``monitoring.log`` and ``status.json``.

The program is ``python -m training_containers.monitoring.monitor`` (the same one SageMaker runs).
A job whose ``report.json`` exists is returned without running again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp_server.backends.base import MonitoringBackend
from mcp_server.backends.local.data import LocalDatasetBackend, confined_path, path_from_uri
from mcp_server.backends.local.files import exclusive, write_json_atomic, write_text_atomic
from mcp_server.backends.local.processing_job import failure_reason, run_processing_job
from mcp_server.core.monitoring.models import (
    GroundTruthReceipt,
    MonitoringJobRequest,
    MonitoringReport,
    MonitoringSchedule,
    MonitorState,
)
from mcp_server.errors import DatasetError, MonitoringError, NotFoundError
from mcp_server.settings import Settings

PROGRAM = "training_containers.monitoring.monitor"
LOG = "monitoring.log"


def job_config(request: MonitoringJobRequest) -> dict[str, object]:
    """The program's ``monitoring.json`` for a request (both backends write the same)."""
    return {
        "endpoint_name": request.endpoint_name,
        "since": request.since,
        "until": request.until,
        "drift_psi": request.drift_psi,
        "metric_floor": request.metric_floor,
        "task": request.task,
        "target": request.target,
    }


def ground_truth_lines(labels: dict[str, str]) -> str:
    """Labels as SageMaker's ground-truth JSON Lines (``eventMetadata.eventId`` = the inference id)."""
    return "".join(
        json.dumps(
            {
                "groundTruthData": {"data": label, "encoding": "CSV"},
                "eventMetadata": {"eventId": identity},
                "eventVersion": "0",
            },
            separators=(",", ":"),
        )
        + "\n"
        for identity, label in labels.items()
    )


#: The fields of ``report.json`` that go into a MonitoringReport as they are.
REPORT_FIELDS = (
    "endpoint_name", "status", "since", "until", "records", "rows", "bad_lines", "features", "prediction",
    "drifted_features", "quality", "labelled_rows", "unknown_ground_truth", "violations", "system",
    "feedback_rows", "duration_s",
)  # fmt: skip


def report_from(
    body: dict[str, Any], job_name: str, uri: Callable[[str], str], log_uri: str
) -> MonitoringReport:
    """Build a MonitoringReport from ``report.json``'s content; ``uri(relative)`` names an output.

    Raises:
        MonitoringError: the content does not fit the report.
    """
    try:
        return MonitoringReport.model_validate(
            {
                **{key: body[key] for key in REPORT_FIELDS if key in body},
                "job_name": job_name,
                "statistics_uri": uri("statistics.json"),
                "constraints_uri": uri("constraints.json"),
                "violations_uri": uri("constraint_violations.json"),
                "report_uri": uri("report.json"),
                "markdown_uri": uri("report.md"),
                "plots": {name: uri(str(path)) for name, path in dict(body.get("plots") or {}).items()},
                "feedback_uri": uri("feedback.parquet") if body.get("feedback_rows") else "",
                "log_uri": log_uri,
            }
        )
    except (KeyError, TypeError, ValueError) as err:
        raise MonitoringError(f"cannot read the report of monitoring job {job_name}: {err}") from err


class LocalMonitoringBackend(MonitoringBackend):
    """Monitoring in the workspace (see the module).

    Args:
        settings: the workspace and the jobs' memory limit.
        base_dir: the project folder relative ``file://`` sources resolve against.
    """

    def __init__(self, settings: Settings, base_dir: Path | None = None) -> None:
        self._settings = settings
        self._home = settings.home
        self._base_dir = base_dir or Path.cwd()

    # -- jobs ---------------------------------------------------------------------------------

    def run_monitoring_job(self, request: MonitoringJobRequest) -> MonitoringReport:
        """Run the monitoring job as a local processing job (see the module).

        Raises:
            MonitoringError: the baseline is not a readable ``file://`` URI, or the job failed
                (the program's failure reason and its log's path).
        """
        job_dir = self._job_dir(request.endpoint_name, request.job_name)
        try:
            baseline = path_from_uri(request.baseline_uri)
        except ValueError as err:
            raise MonitoringError(
                f"the baseline {request.baseline_uri!r} is not a local file: {err}"
            ) from err
        if not baseline.is_file():
            raise MonitoringError(
                f"the baseline {baseline} does not exist; the deployed version's evaluation wrote none"
            )
        with exclusive(job_dir.parent / f"{request.job_name}.lock"):
            if not (job_dir / "output" / "report.json").is_file():
                capture = self._home / "capture" / request.endpoint_name
                truth = self._home / "ground_truth" / request.endpoint_name
                system = self._home / "system_metrics" / request.endpoint_name
                for folder in (capture, truth, system):
                    folder.mkdir(parents=True, exist_ok=True)
                status = run_processing_job(
                    job_dir,
                    PROGRAM,
                    {
                        "capture": capture,
                        "baseline": baseline.parent,
                        "ground_truth": truth,
                        "system": system,
                    },
                    ("monitoring.json", job_config(request)),
                    self._settings,
                    LOG,
                    timeout_s=request.max_runtime_s,
                )
                if status["timed_out"]:
                    raise MonitoringError(
                        f"MaxRuntimeExceeded: monitoring job {request.job_name} ran longer than "
                        f"{request.max_runtime_s} seconds (log: {job_dir / LOG})"
                    )
                if not (job_dir / "output" / "report.json").is_file():
                    reason = failure_reason(
                        job_dir, status["exit_code"], LOG, self._settings.job_memory_limit_mb, "report"
                    )
                    raise MonitoringError(
                        f"monitoring job {request.job_name} failed: {reason} (log: {job_dir / LOG})"
                    )
            return self._read(request.endpoint_name, request.job_name)

    def describe_monitoring_job(self, job_name: str) -> MonitoringReport:
        """Return a finished job's report (the job is found under any endpoint).

        Raises:
            NotFoundError: no finished job has that name.
        """
        endpoint = self._endpoint_of(job_name)
        return self._read(endpoint, job_name)

    def read_report_markdown(self, job_name: str) -> tuple[str, dict[str, str]]:
        """Return ``report.md`` and its plots (relative name -> ``file://`` URI).

        Raises:
            NotFoundError: no finished job has that name.
        """
        output = self._job_dir(self._endpoint_of(job_name), job_name) / "output"
        body = json.loads((output / "report.json").read_text())
        plots = {str(path): (output / str(path)).as_uri() for path in (body.get("plots") or {}).values()}
        return (output / "report.md").read_text(), plots

    def _endpoint_of(self, job_name: str) -> str:
        for report in sorted((self._home / "monitoring").glob(f"*/jobs/{job_name}/output/report.json")):
            return report.parents[3].name
        raise NotFoundError(f"no finished monitoring job is named {job_name!r}; see mlops monitor NAME")

    def _read(self, endpoint_name: str, job_name: str) -> MonitoringReport:
        job_dir = self._job_dir(endpoint_name, job_name)
        output = job_dir / "output"
        try:
            body = json.loads((output / "report.json").read_text())
        except (OSError, ValueError) as err:
            raise NotFoundError(f"monitoring job {job_name} has no readable report: {err}") from err
        return report_from(
            body, job_name, lambda relative: (output / relative).as_uri(), (job_dir / LOG).as_uri()
        )

    def _job_dir(self, endpoint_name: str, job_name: str) -> Path:
        return self._home / "monitoring" / endpoint_name / "jobs" / job_name

    def job_folder(self, endpoint_name: str, job_name: str) -> Path:
        """The folder of a job: its inputs, ``output/``, ``monitoring.log`` and ``status.json``."""
        return self._job_dir(endpoint_name, job_name)

    # -- ground truth -------------------------------------------------------------------------

    def put_ground_truth(self, endpoint_name: str, labels: dict[str, str]) -> GroundTruthReceipt:
        """Write the labels as one JSON Lines file under ``ground_truth/{endpoint}/yyyy/mm/dd/hh/``.

        Raises:
            MonitoringError: the file cannot be written.
        """
        now = dt.datetime.now(dt.UTC)
        path = (
            self._home
            / "ground_truth"
            / endpoint_name
            / now.strftime("%Y/%m/%d/%H")
            / f"{uuid.uuid4()}.jsonl"
        )
        try:
            write_text_atomic(path, ground_truth_lines(labels))
        except OSError as err:
            raise MonitoringError(f"cannot write ground truth to {path}: {err}") from err
        return GroundTruthReceipt(endpoint_name=endpoint_name, uri=path.as_uri(), records=len(labels))

    # -- schedules and state ------------------------------------------------------------------

    def put_monitoring_schedule(self, schedule: MonitoringSchedule) -> MonitoringSchedule:
        """Write ``monitoring/{endpoint}/schedule.json`` (``mlops serve`` reads it each minute).

        Raises:
            MonitoringError: it cannot be written.
        """
        path = self._home / "monitoring" / schedule.endpoint_name / "schedule.json"
        try:
            write_json_atomic(path, schedule.model_dump(mode="json"))
        except OSError as err:
            raise MonitoringError(f"cannot write the monitoring schedule {path}: {err}") from err
        return schedule

    def get_monitoring_schedule(self, endpoint_name: str) -> MonitoringSchedule:
        """Read ``monitoring/{endpoint}/schedule.json``.

        Raises:
            NotFoundError: the endpoint has no monitoring schedule.
            MonitoringError: the file is unreadable.
        """
        path = self._home / "monitoring" / endpoint_name / "schedule.json"
        if not path.is_file():
            raise NotFoundError(
                f"endpoint {endpoint_name!r} is not monitored: deploy it from an issue whose spec has a "
                "monitoring section"
            )
        try:
            return MonitoringSchedule.model_validate_json(path.read_text())
        except (OSError, ValueError) as err:
            raise MonitoringError(f"cannot read the monitoring schedule {path}: {err}") from err

    def list_monitoring_schedules(self) -> list[MonitoringSchedule]:
        """Every endpoint's monitoring schedule, by endpoint name (unreadable ones skipped)."""
        found = []
        for path in sorted((self._home / "monitoring").glob("*/schedule.json")):
            try:
                found.append(MonitoringSchedule.model_validate_json(path.read_text()))
            except (OSError, ValueError):
                continue
        return found

    def get_monitor_state(self, endpoint_name: str) -> MonitorState:
        """Read ``monitoring/{endpoint}/state.json`` (an empty state when there is none)."""
        path = self._home / "monitoring" / endpoint_name / "state.json"
        if not path.is_file():
            return MonitorState()
        try:
            return MonitorState.model_validate_json(path.read_text())
        except (OSError, ValueError) as err:
            raise MonitoringError(f"cannot read the monitor's state {path}: {err}") from err

    def save_monitor_state(self, endpoint_name: str, state: MonitorState) -> MonitorState:
        """Write ``monitoring/{endpoint}/state.json`` atomically.

        Raises:
            MonitoringError: it cannot be written.
        """
        path = self._home / "monitoring" / endpoint_name / "state.json"
        try:
            write_json_atomic(path, state.model_dump(mode="json"))
        except OSError as err:
            raise MonitoringError(f"cannot write the monitor's state {path}: {err}") from err
        return state

    def data_version(self, source: str) -> str:
        """The SHA-256 of a ``file://`` source's bytes (``""`` for ``sklearn://``).

        Raises:
            MonitoringError: the source is outside the data roots or cannot be read.
        """
        if not source.startswith("file://"):
            return ""
        try:
            roots = LocalDatasetBackend(self._settings, self._base_dir).data_roots
            path = confined_path(source, self._base_dir, roots)
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except (DatasetError, OSError) as err:
            raise MonitoringError(f"cannot read the dataset source {source}: {err}") from err
        return f"sha256:{digest.hexdigest()}"
