"""The monitoring backends: the same monitoring program as a local processing job and as a SageMaker
processing job (moto records it; ``tests/sagemaker_jobs.py`` runs it on what S3 holds), with
schedules, the monitor's state and ground truth on each side.

The capture is written in SageMaker's format by the inference server's own ``record``: a window
of breast-cancer rows whose ``mean radius`` is shifted, one corrupt line, labels for 100 of
the requests (10 wrong) and one label for an unknown id.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mcp_server.backends.aws.monitoring import SageMakerMonitoringBackend, schedule_name
from mcp_server.backends.local.monitoring import LocalMonitoringBackend
from mcp_server.core.models import IssueRef
from mcp_server.core.monitoring.models import MonitoringJobRequest, MonitoringSchedule, MonitorState
from mcp_server.core.spec.schema import validate_spec
from mcp_server.errors import MonitoringError, NotFoundError
from mcp_server.settings import Settings
from tests.sagemaker_jobs import run_processing_jobs, upload_folder
from training_containers.evaluation.baseline import build_baseline, feature_kinds
from training_containers.inference.capture import Captured, hour_folder, record

BUCKET = "mlops-bucket"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SINCE = (NOW - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
UNTIL = (NOW + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-monitoring"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/mlops-scheduler"


def write_world(root: Path) -> dict[str, Path]:
    """Baseline, capture (300 requests, one corrupt line) and ground truth under ``root``."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    features = list(data.feature_names)
    labels = ["malignant", "benign"]
    train = frame.assign(target=frame["target"].map(dict(enumerate(labels))))
    baseline = build_baseline(train, feature_kinds(train, features, {}), "target", "categorical")
    baseline["class_labels"] = labels
    (root / "baseline").mkdir(parents=True)
    (root / "baseline" / "baseline.json").write_text(json.dumps(baseline))
    folder = hour_folder(root / "capture", "bc", "v1", NOW)
    folder.mkdir(parents=True)
    with (folder / "capture.jsonl").open("w") as handle:
        for i in range(300):
            row = frame.iloc[i][features].to_numpy(dtype=float).copy()
            row[0] *= 1.6  # mean radius
            answer = {"predictions": [labels[int(frame["target"].iloc[i])]], "variant": "v1"}
            captured = Captured(
                "v1", "application/json", json.dumps({"instances": [row.tolist()]}), "application/json",
                json.dumps(answer), f"event-{i}", NOW, f"req-{i}",
            )  # fmt: skip
            handle.write(json.dumps(record(captured)) + "\n")
        handle.write("{not json\n")
    truth = {
        f"req-{i}": str(frame["target"].iloc[i] if i >= 10 else 1 - frame["target"].iloc[i])
        for i in range(100)
    }
    truth["req-unknown"] = "1"
    return {"baseline": root / "baseline" / "baseline.json", "truth": truth}  # type: ignore[dict-item]


def request(baseline_uri: str, job: str = "mon-bc-1") -> MonitoringJobRequest:
    return MonitoringJobRequest(
        job_name=job, endpoint_name="bc", baseline_uri=baseline_uri, since=SINCE, until=UNTIL,
        task="classification", target="target", drift_psi=0.2, metric_floor={"f1": 0.99},
    )  # fmt: skip


def check_report(report: Any) -> None:
    assert report.status == "CompletedWithViolations"
    assert report.records == 300 and report.rows == 300 and report.bad_lines == 1
    assert report.drifted_features == ["mean radius"]
    radius = next(f for f in report.features if f.feature == "mean radius")
    assert radius.test == "ks" and radius.p_value < 1e-10 and radius.psi > 1
    assert report.prediction is not None and report.prediction.psi < 0.2
    assert report.labelled_rows == 100 and report.unknown_ground_truth == 1
    assert report.quality["accuracy"] == pytest.approx(0.9)  # 10 of 100 labels contradict the predictions
    assert report.violations == 1


def spec_schedule(**changes: Any) -> MonitoringSchedule:
    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": "xgboost",
            "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
            "deployment": {},
            "monitoring": {"schedule": "cron(0 * * * ? *)"},
            "retraining": {"triggers": {"schedule": "rate(7 days)", "drift_psi": 0.5}},
        }
    )
    values: dict[str, Any] = {
        "endpoint_name": "bc",
        "model_name": "bc",
        "model_version": "1.0.0",
        "issue": IssueRef(number=4, title="Train bc"),
        "spec": spec.model_dump(mode="json"),
        "spec_hash": spec.spec_hash(),
        "monitoring": spec.monitoring,
        "triggers": spec.retraining.triggers,
        "created_at": SINCE,
    }
    return MonitoringSchedule(**{**values, **changes})


# --- local -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LocalMonitoringBackend, Settings, dict[str, Any]]:
    settings = Settings(home=tmp_path_factory.mktemp("monitoring-local"), allow_write=True)
    world = write_world(settings.home)
    backend = LocalMonitoringBackend(settings)
    backend.put_ground_truth("bc", world["truth"])  # type: ignore[arg-type]
    return backend, settings, world


def test_the_local_job_finds_the_drift_the_quality_and_the_bad_line(local: Any) -> None:
    backend, settings, world = local
    report = backend.run_monitoring_job(request(world["baseline"].as_uri()))
    check_report(report)
    folder = backend.job_folder("bc", "mon-bc-1") / "output"
    for name in (
        "statistics.json",
        "constraints.json",
        "constraint_violations.json",
        "baseline/statistics.json",
    ):
        assert (folder / name).is_file(), name
    assert report.violations_uri == (folder / "constraint_violations.json").as_uri()
    log = (backend.job_folder("bc", "mon-bc-1") / "monitoring.log").read_text()
    assert "1 line(s) skipped" in log and "JSONDecodeError" in log
    markdown, plots = backend.read_report_markdown("mon-bc-1")
    assert "| mean radius | numeric |" in markdown and "**yes**" in markdown
    assert "plots/drift_mean_radius.png" in plots and Path(plots["plots/drift_mean_radius.png"][7:]).is_file()
    assert backend.describe_monitoring_job("mon-bc-1") == report


def test_a_finished_job_is_not_run_again(local: Any) -> None:
    backend, _, world = local
    backend.run_monitoring_job(request(world["baseline"].as_uri(), "mon-bc-2"))
    status = backend.job_folder("bc", "mon-bc-2") / "status.json"
    before = status.stat().st_mtime_ns
    backend.run_monitoring_job(request(world["baseline"].as_uri(), "mon-bc-2"))
    assert status.stat().st_mtime_ns == before


def test_an_empty_window_completes_with_nothing_compared(local: Any) -> None:
    backend, _, world = local
    empty = request(world["baseline"].as_uri(), "mon-bc-empty").model_copy(
        update={"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}
    )
    report = backend.run_monitoring_job(empty)
    assert (report.status, report.rows, report.drifted_features) == ("Completed", 0, [])
    assert "No request was captured in this window" in backend.read_report_markdown("mon-bc-empty")[0]


def test_a_missing_or_corrupt_baseline_is_a_clear_error(local: Any, tmp_path: Path) -> None:
    backend, _, _ = local
    with pytest.raises(MonitoringError, match="does not exist"):
        backend.run_monitoring_job(request((tmp_path / "none.json").as_uri(), "mon-bc-3"))
    corrupt = tmp_path / "bad" / "baseline.json"
    corrupt.parent.mkdir()
    corrupt.write_text("{")
    with pytest.raises(MonitoringError, match=r"monitoring job mon-bc-4 failed: JSONDecodeError.*log: "):
        backend.run_monitoring_job(request(corrupt.as_uri(), "mon-bc-4"))
    with pytest.raises(NotFoundError, match="no finished monitoring job"):
        backend.describe_monitoring_job("mon-bc-4")


def test_local_schedules_states_and_data_versions_round_trip(local: Any, tmp_path: Path) -> None:
    backend, settings, _ = local
    with pytest.raises(NotFoundError, match="is not monitored"):
        backend.get_monitoring_schedule("other")
    schedule = backend.put_monitoring_schedule(spec_schedule())
    assert backend.get_monitoring_schedule("bc") == schedule
    assert [s.endpoint_name for s in backend.list_monitoring_schedules()] == ["bc"]
    assert backend.get_monitor_state("bc") == MonitorState()
    state = MonitorState(last_until=UNTIL, last_job="mon-bc-1")
    backend.save_monitor_state("bc", state)
    assert backend.get_monitor_state("bc") == state
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    roots = Settings(home=settings.home, data_roots=(tmp_path,))
    versioned = LocalMonitoringBackend(roots, tmp_path)
    first = versioned.data_version(data.as_uri())
    assert first.startswith("sha256:") and versioned.data_version(data.as_uri()) == first
    data.write_text("a,b\n1,3\n")
    assert versioned.data_version(data.as_uri()) != first
    assert versioned.data_version("sklearn://iris") == ""
    with pytest.raises(MonitoringError, match="not in an allowed data folder"):
        versioned.data_version("file:///etc/passwd")


# --- AWS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(sagemaker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    endpoint = sagemaker_settings.aws_endpoint_url
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    root = tmp_path_factory.mktemp("monitoring-aws")
    world = write_world(root)
    upload_folder(s3, root / "capture" / "bc", f"s3://{BUCKET}/capture/bc")
    upload_folder(s3, root / "baseline", f"s3://{BUCKET}/evaluations/e1/output/baseline")
    settings = Settings(
        **{
            **sagemaker_settings.__dict__,
            "training_images": {
                "monitoring": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-monitoring:1"
            },
            "monitoring_state_machine_arn": MACHINE,
            "scheduler_role_arn": SCHEDULER_ROLE,
        }
    )
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=endpoint)
    jobs = run_processing_jobs(sagemaker, s3)
    backend = SageMakerMonitoringBackend(settings, sagemaker_client=sagemaker, s3_client=s3, poll_s=0.05)
    backend.put_ground_truth("bc", world["truth"])
    return {"backend": backend, "s3": s3, "jobs": jobs, "endpoint": endpoint, "settings": settings}


def test_the_sagemaker_job_reads_s3_and_reports_as_the_local_one(aws: dict[str, Any], local: Any) -> None:
    backend = aws["backend"]
    baseline = f"s3://{BUCKET}/evaluations/e1/output/baseline/baseline.json"
    report = backend.run_monitoring_job(request(baseline))
    check_report(report)
    assert aws["jobs"].runs == ["mon-bc-1"]
    assert (
        report.violations_uri
        == f"s3://{BUCKET}/monitoring/bc/jobs/mon-bc-1/output/constraint_violations.json"
    )
    local_report = local[0].describe_monitoring_job("mon-bc-1")
    assert [f.psi for f in report.features] == pytest.approx([f.psi for f in local_report.features])
    job = boto3.client(
        "sagemaker", region_name="us-east-1", endpoint_url=aws["endpoint"]
    ).describe_processing_job(ProcessingJobName="mon-bc-1")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs == {
        "capture": f"s3://{BUCKET}/capture/bc/",
        "baseline": f"s3://{BUCKET}/evaluations/e1/output/baseline/",
        "config": f"s3://{BUCKET}/monitoring/bc/jobs/mon-bc-1/input/config/",
        "ground_truth": f"s3://{BUCKET}/ground_truth/bc/",
    }
    assert job["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "-m",
        "training_containers.monitoring.monitor",
    ]
    # a second call finds the report and starts nothing
    backend.run_monitoring_job(request(baseline))
    assert aws["jobs"].runs == ["mon-bc-1"]
    markdown, plots = backend.read_report_markdown("mon-bc-1")
    assert "mean radius" in markdown and plots["plots/drift_mean_radius.png"].startswith("s3://")


def test_an_endpoint_that_captured_nothing_gets_a_report_without_a_job(aws: dict[str, Any]) -> None:
    backend = aws["backend"]
    empty = request(f"s3://{BUCKET}/evaluations/e1/output/baseline/baseline.json", "mon-quiet-1").model_copy(
        update={"endpoint_name": "quiet"}
    )
    report = backend.run_monitoring_job(empty)
    assert (report.status, report.rows) == ("Completed", 0)
    assert "mon-quiet-1" not in aws["jobs"].runs
    assert "No request has been captured yet" in backend.read_report_markdown("mon-quiet-1")[0]


def test_put_monitoring_schedule_creates_scheduler_schedules_and_a_dashboard(aws: dict[str, Any]) -> None:
    backend = aws["backend"]
    schedule = spec_schedule()
    backend.put_monitoring_schedule(schedule)
    backend.put_monitoring_schedule(
        schedule.model_copy(update={"model_version": "1.0.1"})
    )  # updates in place
    scheduler = boto3.client("scheduler", region_name="us-east-1", endpoint_url=aws["endpoint"])
    monitor = scheduler.get_schedule(Name=schedule_name("monitor", "bc"))
    assert monitor["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert monitor["Target"]["Arn"] == MACHINE and monitor["Target"]["RoleArn"] == SCHEDULER_ROLE
    assert json.loads(monitor["Target"]["Input"]) == {"endpoint_name": "bc"}
    retrain = scheduler.get_schedule(Name=schedule_name("retrain", "bc"))
    assert retrain["ScheduleExpression"] == "rate(7 days)"
    assert json.loads(retrain["Target"]["Input"]) == {"endpoint_name": "bc", "trigger": "schedule"}
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=aws["endpoint"])
    body = json.loads(cloudwatch.get_dashboard(DashboardName="mlops-bc")["DashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Invocations",
        "Errors (4xx, 5xx)",
        "ModelLatency (µs): p50, p95, p99",
        "CPU and memory (%)",
    ]
    assert backend.get_monitoring_schedule("bc").model_version == "1.0.1"
    assert [s.endpoint_name for s in backend.list_monitoring_schedules()] == ["bc"]
    with pytest.raises(NotFoundError):
        backend.get_monitoring_schedule("nothing")


def test_aws_state_ground_truth_and_data_versions(aws: dict[str, Any]) -> None:
    backend, s3 = aws["backend"], aws["s3"]
    assert backend.get_monitor_state("bc") == MonitorState()
    state = MonitorState(last_until=UNTIL)
    backend.save_monitor_state("bc", state)
    assert backend.get_monitor_state("bc") == state
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="ground_truth/bc/")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".jsonl")
    first = json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().splitlines()[0])
    assert first == {  # req-0 is one of the ten labels that contradict the prediction
        "groundTruthData": {"data": "1", "encoding": "CSV"},
        "eventMetadata": {"eventId": "req-0"},
        "eventVersion": "0",
    }
    s3.create_bucket(Bucket="data-bucket")
    s3.put_bucket_versioning(Bucket="data-bucket", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="data-bucket", Key="loans.csv", Body=b"a\n1\n")
    first_version = backend.data_version("s3://data-bucket/loans.csv")
    s3.put_object(Bucket="data-bucket", Key="loans.csv", Body=b"a\n2\n")
    assert (
        first_version.startswith("version:")
        and backend.data_version("s3://data-bucket/loans.csv") != first_version
    )
    with pytest.raises(MonitoringError):
        backend.data_version("s3://data-bucket/missing.csv")


def test_scheduling_without_the_stack_settings_is_refused(aws: dict[str, Any]) -> None:
    settings = Settings(**{**aws["settings"].__dict__, "monitoring_state_machine_arn": None})
    backend = SageMakerMonitoringBackend(settings, s3_client=aws["s3"])
    with pytest.raises(MonitoringError, match="MLOPS_MONITORING_STATE_MACHINE_ARN"):
        backend.put_monitoring_schedule(spec_schedule(endpoint_name="other"))


def test_capture_rows_parse_the_same_from_csv_and_json(tmp_path: Path) -> None:
    from training_containers.monitoring.capture import read_capture

    folder = hour_folder(tmp_path, "e", "v1", NOW)
    folder.mkdir(parents=True)
    lines = [
        record(Captured("v1", "text/csv", "a,b\n1,x\n2,y", "text/csv", "p\nq", "e1", NOW)),
        record(
            Captured(
                "v1",
                "application/json",
                json.dumps({"instances": [{"a": 3, "b": "z"}]}),
                "application/json",
                json.dumps({"predictions": ["r"]}),
                "e2",
                NOW,
                "caller-2",
            )
        ),
        record(Captured("v1", "text/csv", "4,w", "text/csv", "p\nq", "e3", NOW)),  # 1 row, 2 predictions
    ]
    (folder / "c.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    window = read_capture(tmp_path / "e", ["a", "b"], {"b"}, SINCE, UNTIL)
    frame = window.frame.sort_values("a")
    assert frame["a"].tolist() == [1.0, 2.0, 3.0]
    assert frame["b"].tolist() == ["x", "y", "z"]
    assert frame["__inference_id__"].tolist() == ["e1:0", "e1:1", "caller-2"]
    assert frame["__prediction__"].tolist() == ["p", "q", "r"]
    assert window.bad_lines == 1 and "1 input rows but 2 predictions" in window.reasons[0]
    assert isinstance(window.frame, pd.DataFrame)
