"""Local evaluation: the evaluation program as a processing job in a subprocess.

Each evaluation gets ``settings.home/evaluations/{evaluation_id}/`` playing the role of
``/opt/ml/processing`` (the SageMaker Processing contract, see
``training_containers/evaluation/processing.py``):

- ``input/model`` and ``input/{train,validation,test}``: links to the model folder and the
  dataset's split folders (copies where links cannot be made);
- ``input/config/evaluation.json``: the request's task, metrics, class labels, explainability,
  fairness and seed;
- ``output/report.json``, ``output/plots/*.png``, ``output/baseline/baseline.json`` or
  ``output/failure``: written by the program;
- ``evaluation.log`` (its stdout and stderr) and ``status.json`` (exit code, times).

The program runs as ``python -m training_containers.evaluation.evaluate`` in its own process
group, with an address-space limit of ``settings.job_memory_limit_mb`` MiB and a time limit of
``request.max_runtime_s`` seconds, and the call waits for it. An evaluation whose
``report.json`` exists is returned without running again. With a tracking run, the metrics are
logged to it as ``test_<metric>``, ``validation_<metric>`` and ``gap_<metric>``, and the outputs
and the log as artifacts under ``evaluation/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from mcp_server.backends.base import EvaluationBackend
from mcp_server.backends.local.data import path_from_uri
from mcp_server.backends.local.files import exclusive, write_json_atomic
from mcp_server.backends.local.processing_job import failure_reason, run_processing_job
from mcp_server.core.jobs.evaluation import check_evaluation_request, program_config, report_fields
from mcp_server.core.models import EvaluationReport, EvaluationRequest
from mcp_server.errors import EvaluationError
from mcp_server.settings import Settings

#: The folder holding the ``training_containers`` package (the subprocess's working directory).
PROGRAM = "training_containers.evaluation.evaluate"
LOG = "evaluation.log"


class LocalEvaluationBackend(EvaluationBackend):
    """Runs evaluations as local processing jobs and logs them to the training run.

    Args:
        settings: the workspace (``settings.home``), the jobs' memory limit and the MLflow store.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._root = settings.home / "evaluations"

    def evaluate_model(self, request: EvaluationRequest) -> EvaluationReport:
        """Run the evaluation job (or find its report) and return the report.

        Args:
            request: the model folder URI, the DatasetRef (its ``train``, ``test`` and optional
                ``validation`` splits are mounted), the metrics that must be computable, the
                optional SHAP and fairness sections, ``max_runtime_s`` (seconds) and the MLflow
                run to log into.

        Returns:
            The report: every metric of the task on the test, validation and train splits, the
            train-minus-test gaps, plot name -> PNG URI, SHAP and fairness summaries when asked
            for, the baseline, report and log URIs, and ``duration_s`` (the job's wall time,
            seconds).

        Raises:
            EvaluationError: an unsupported task, a bad evaluation_id or an unknown metric; a
                model folder or split that does not exist; a job that failed (its failure
                reason, else the log's last lines, and the log path) or ran longer than
                ``max_runtime_s`` (``MaxRuntimeExceeded``); or a tracking failure.
        """
        check_evaluation_request(request)
        job_dir = self._root / request.evaluation_id
        with exclusive(job_dir / "evaluation.lock"):
            if not (job_dir / "output" / "report.json").is_file():
                self._run(request, job_dir)
            report = read_report(job_dir)
            if request.tracking_run_id:
                self._track(request.tracking_run_id, report, job_dir)
        return report

    def _run(self, request: EvaluationRequest, job_dir: Path) -> None:
        """Run the program as a local processing job to its end, and check that it completed."""
        inputs = _input_folders(request)
        (job_dir / "tracking.json").unlink(missing_ok=True)
        status = run_processing_job(
            job_dir,
            PROGRAM,
            inputs,
            ("evaluation.json", program_config(request)),
            self._settings,
            LOG,
            timeout_s=request.max_runtime_s,
        )
        _check_completed(
            request, job_dir, status["exit_code"], status["timed_out"], self._settings.job_memory_limit_mb
        )

    def _track(self, run_id: str, report: EvaluationReport, job_dir: Path) -> None:
        """Log the metrics and the outputs to the MLflow run, once per run (``tracking.json``)."""
        marker = job_dir / "tracking.json"
        if marker.is_file() and json.loads(marker.read_text()).get("run_id") == run_id:
            return
        from mlflow.entities import Metric

        from mcp_server.backends.local.mlflow_store import open_client

        now = int(time.time() * 1000)
        values = {
            **{f"test_{k}": v for k, v in report.metrics.items()},
            **{f"validation_{k}": v for k, v in report.validation_metrics.items()},
            **{f"gap_{k}": v for k, v in report.gaps.items()},
        }
        try:
            client = open_client(self._settings)
            client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
            client.log_artifacts(run_id, str(job_dir / "output"), artifact_path="evaluation")
            client.log_artifact(run_id, str(job_dir / LOG), artifact_path="evaluation")
        except Exception as err:  # MlflowException, or an OSError from the artifact store
            raise EvaluationError(
                f"cannot log the evaluation to MLflow run {run_id}: {err}; check that the run exists "
                f"in {self._settings.tracking_uri}"
            ) from err
        write_json_atomic(marker, {"run_id": run_id})


def read_report(job_dir: Path) -> EvaluationReport:
    """Build the EvaluationReport from ``output/report.json``, with file:// URIs.

    Raises:
        EvaluationError: report.json is unreadable or does not fit the report's fields.
    """
    output = job_dir / "output"
    try:
        body = json.loads((output / "report.json").read_text())
        status_file = job_dir / "status.json"
        status = json.loads(status_file.read_text()) if status_file.is_file() else {}
        return EvaluationReport(
            evaluation_id=job_dir.name,
            **report_fields(body),
            plots={name: (output / relative).as_uri() for name, relative in body.get("plots", {}).items()},
            baseline_uri=(output / body["baseline"]).as_uri() if body.get("baseline") else None,
            report_uri=(output / "report.json").as_uri(),
            log_uri=(job_dir / LOG).as_uri(),
            duration_s=status.get("duration_s") or body.get("duration_s") or 0.0,
        )
    except (OSError, ValueError, KeyError, TypeError) as err:  # pydantic's ValidationError is a ValueError
        raise EvaluationError(f"cannot read the evaluation report {output / 'report.json'}: {err}") from err


def _input_folders(request: EvaluationRequest) -> dict[str, Path]:
    """Input name (model, train, validation, test) -> the local folder to mount.

    Control tasks mount the model only (a policy folder with metadata.json): their data is the
    environment.

    Raises:
        EvaluationError: the model folder lacks model.joblib (except for control) or
            metadata.json, or the dataset lacks its train or test split.
    """
    try:
        model = path_from_uri(request.model_uri)
    except ValueError as err:
        raise EvaluationError(f"cannot load the model at {request.model_uri}: {err}") from err
    needed = ["metadata.json"] if request.task == "control" else ["model.joblib", "metadata.json"]
    if not all((model / name).is_file() for name in needed):
        raise EvaluationError(
            f"cannot load the model at {request.model_uri}: expected a folder holding {' and '.join(needed)}"
        )
    folders = {"model": model}
    if request.task == "control":
        return folders
    for name in ("train", "validation", "test"):
        uri = request.dataset.splits.get(name)
        if uri is None and name != "validation":
            raise EvaluationError(
                f"dataset {request.dataset.dataset_id} has no {name} split; prepare it again"
            )
        if uri is not None:
            folder = path_from_uri(uri) if uri.startswith("file:") else Path("/nonexistent")
            if not (folder / "data.parquet").is_file():
                raise EvaluationError(
                    f"the {name} split {uri} holds no data.parquet; prepare the dataset again"
                )
            folders[name] = folder
    return folders


def _check_completed(
    request: EvaluationRequest, job_dir: Path, exit_code: int, timed_out: bool, memory_limit_mb: int
) -> None:
    """Raise the job's failure as an EvaluationError unless it wrote its report.

    A failure that looks like the address-space limit (``processing_job.MEMORY_SIGNS``: e.g. SHAP's llvmlite
    cannot map its library under about 3 GiB) says so and names ``MLOPS_JOB_MEMORY_LIMIT_MB``.
    """
    log = job_dir / LOG
    if timed_out:
        raise EvaluationError(
            f"MaxRuntimeExceeded: evaluation {request.evaluation_id} ran longer than its max_runtime_s "
            f"of {request.max_runtime_s} seconds and was stopped; raise max_runtime_s or drop SHAP "
            f"(log: {log})"
        )
    if exit_code == 0 and (job_dir / "output" / "report.json").is_file():
        return
    reason = failure_reason(job_dir, exit_code, LOG, memory_limit_mb, "report")
    raise EvaluationError(f"evaluation {request.evaluation_id} failed: {reason} (log: {job_dir / LOG})")
