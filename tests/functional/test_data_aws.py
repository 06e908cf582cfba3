"""S3DatasetBackend against a moto server: the preparation program as a SageMaker processing job.

moto records the processing job; ``tests/sagemaker_jobs.py`` runs the real preparation program
on what the job's inputs hold on S3 and uploads its output, as SageMaker would. The result must
match the local backend's for the same spec and data: one program, two backends.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from mcp_server.backends.aws.data import S3DatasetBackend
from mcp_server.backends.local.data import LocalDatasetBackend
from mcp_server.errors import DatasetError, TransientError
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT
from tests.functional.conftest import SAGEMAKER_IMAGES, SAGEMAKER_ROLE
from tests.functional.test_data_local import make_spec, read_split
from tests.sagemaker_jobs import ProcessingJobs, run_processing_jobs

BUCKET = "mlops-data-bucket"
LOAN = REPO_ROOT / "examples" / "data" / "loan_approval.csv"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-preparation:1"


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> Any:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket="team-data")
    client.put_object(Bucket="team-data", Key="loans/loan_approval.csv", Body=LOAN.read_bytes())
    client.put_object(
        Bucket="team-data", Key="loans/loan_approval.csv.gz", Body=gzip.compress(LOAN.read_bytes())
    )
    frame = pd.read_csv(LOAN)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    client.put_object(Bucket="team-data", Key="loans/loan_approval.parquet", Body=buffer.getvalue())
    return client


@pytest.fixture(scope="module")
def settings(moto_endpoint: str) -> Settings:
    return Settings(
        home=Path("/nonexistent"),
        backend="aws",
        s3_bucket=BUCKET,
        sagemaker_role_arn=SAGEMAKER_ROLE,
        training_images={**SAGEMAKER_IMAGES, "preparation": IMAGE},
        aws_endpoint_url=moto_endpoint,
    )


@pytest.fixture(scope="module")
def sagemaker(moto_endpoint: str) -> Any:
    return boto3.client("sagemaker", region_name="us-east-1", endpoint_url=moto_endpoint)


@pytest.fixture(scope="module")
def jobs(sagemaker: Any, s3: Any) -> ProcessingJobs:
    created: list[dict[str, Any]] = []
    runner = run_processing_jobs(sagemaker, s3)
    sagemaker.meta.events.register(
        "provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: created.append(params)
    )
    runner.created = created  # type: ignore[attr-defined]
    return runner


@pytest.fixture(scope="module")
def backend(settings: Settings, s3: Any, sagemaker: Any, jobs: ProcessingJobs) -> S3DatasetBackend:
    return S3DatasetBackend(settings, s3_client=s3, sagemaker_client=sagemaker, poll_s=0.01)


def s3_split(s3: Any, uri: str) -> pd.DataFrame:
    key = uri.removeprefix(f"s3://{BUCKET}/") + "data.parquet"
    return pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def keys(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_the_same_spec_gives_the_local_backends_version_and_splits(
    backend: S3DatasetBackend, s3: Any, jobs: ProcessingJobs, tmp_path: Path
) -> None:
    spec = make_spec("sklearn://wine", outliers={"method": "iqr", "factor": 1.5})

    ref = backend.prepare_dataset(spec)
    local = LocalDatasetBackend(Settings(home=tmp_path), base_dir=REPO_ROOT).prepare_dataset(spec)

    assert (ref.dataset_id, ref.data_version) == (local.dataset_id, local.data_version)
    assert ref.split_sizes == local.split_sizes
    assert ref.class_labels == local.class_labels
    assert ref.rows_removed == local.rows_removed
    assert ref.rows_removed["outliers"] > 0
    for name in ("train", "validation", "test"):
        assert ref.splits[name].startswith(f"s3://{BUCKET}/datasets/{ref.dataset_id}/processed/")
        assert ref.splits[name].endswith(f"/{name}/")
        pd.testing.assert_frame_equal(s3_split(s3, ref.splits[name]), read_split(local, name))
    assert keys(s3, f"datasets/{ref.dataset_id}/raw/") == [f"datasets/{ref.dataset_id}/raw/data.parquet"]
    metadata_key = (
        ref.splits["train"].removeprefix(f"s3://{BUCKET}/").removesuffix("train/") + "metadata.json"
    )
    assert (
        json.loads(s3.get_object(Bucket=BUCKET, Key=metadata_key)["Body"].read())["dataset_id"]
        == ref.dataset_id
    )
    # The job: the preparation image and program, its configuration on S3, no data input for sklearn://.
    [job] = [p for p in jobs.created if p["ProcessingJobName"] == jobs.runs[-1]]  # type: ignore[attr-defined]
    assert job["ProcessingJobName"].startswith("prepare-")
    assert job["AppSpecification"] == {
        "ImageUri": IMAGE,
        "ContainerEntrypoint": ["python3", "-m", "training_containers.preparation.prepare"],
    }
    assert [i["InputName"] for i in job["ProcessingInputs"]] == ["config"]
    assert job["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"] == 30
    prefix = f"preparations/{job['ProcessingJobName']}"
    config = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"{prefix}/input/config/preparation.json")["Body"].read()
    )
    assert (config["sklearn"], config["input"], config["outliers"]) == (
        "wine",
        None,
        {"method": "iqr", "factor": 1.5},
    )
    assert f"{prefix}/output/dataset.json" in keys(s3, prefix)


def test_a_prepared_dataset_is_returned_without_a_job_or_a_write(
    backend: S3DatasetBackend, s3: Any, jobs: ProcessingJobs
) -> None:
    spec = make_spec("sklearn://iris")
    first = backend.prepare_dataset(spec)
    runs = list(jobs.runs)
    writes: list[str] = []
    s3.meta.events.register("before-call.s3.PutObject", lambda params, **_: writes.append(params["url_path"]))
    s3.meta.events.register(
        "before-call.s3.CopyObject", lambda params, **_: writes.append(params["url_path"])
    )

    again = backend.prepare_dataset(spec)

    assert again == first
    assert (jobs.runs, writes) == (runs, [])


@pytest.mark.parametrize(
    "key", ["loans/loan_approval.csv", "loans/loan_approval.csv.gz", "loans/loan_approval.parquet"]
)
def test_s3_sources_in_csv_compressed_csv_or_parquet(
    backend: S3DatasetBackend, jobs: ProcessingJobs, tmp_path: Path, key: str
) -> None:
    ref = backend.prepare_dataset(make_spec(f"s3://team-data/{key}", target="approved"))

    assert ref.source == f"s3://team-data/{key}"
    assert ref.class_labels == ["no", "yes"]
    assert sum(ref.split_sizes.values()) == ref.rows_raw - sum(ref.rows_removed.values())
    assert ref.feature_types["employment_type"] == "categorical"
    [job] = [p for p in jobs.created if p["ProcessingJobName"] == jobs.runs[-1]]  # type: ignore[attr-defined]
    [data] = [i["S3Input"] for i in job["ProcessingInputs"] if i["InputName"] == "data"]
    assert (data["S3Uri"], data["LocalPath"]) == (f"s3://team-data/{key}", "/opt/ml/processing/input/data")
    if key.endswith(".csv"):  # the same bytes as a local file: the same data version and splits
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "loan_approval.csv").write_bytes(LOAN.read_bytes())
        local = LocalDatasetBackend(Settings(home=tmp_path / "ws"), base_dir=tmp_path).prepare_dataset(
            make_spec("file://data/loan_approval.csv", target="approved")
        )
        assert (local.data_version, local.split_sizes) == (ref.data_version, ref.split_sizes)


def test_a_changed_object_is_prepared_again_into_a_new_version(
    backend: S3DatasetBackend, s3: Any, jobs: ProcessingJobs
) -> None:
    frame = pd.read_csv(LOAN)
    s3.put_object(Bucket="team-data", Key="loans/changing.csv", Body=frame.to_csv(index=False).encode())
    spec = make_spec("s3://team-data/loans/changing.csv", target="approved")
    before = backend.prepare_dataset(spec)
    frame.loc[3, frame.columns[0]] = frame.loc[3, frame.columns[0]] + 1
    s3.put_object(Bucket="team-data", Key="loans/changing.csv", Body=frame.to_csv(index=False).encode())
    runs = len(jobs.runs)

    after = backend.prepare_dataset(spec)

    assert len(jobs.runs) == runs + 1
    assert after.data_version != before.data_version
    assert after.dataset_id == f"changing-{after.data_version}"


def test_bad_sources_are_dataset_errors_that_name_the_fix(
    backend: S3DatasetBackend, settings: Settings
) -> None:
    with pytest.raises(DatasetError, match=r"cannot read it \(404\); check the URI"):
        backend.prepare_dataset(make_spec("s3://team-data/loans/missing.csv", target="approved"))
    with pytest.raises(DatasetError, match="AWS mode reads sklearn://NAME and s3://BUCKET/KEY"):
        backend.prepare_dataset(make_spec("file://examples/data/loan_approval.csv", target="approved"))
    spec = make_spec("s3://team-data/loans/loan_approval.csv", target="approved")
    assert spec.dataset is not None
    unchecked = spec.model_copy(  # the spec refuses this; the backend checks again for other callers
        update={
            "dataset": spec.dataset.model_copy(update={"source": "s3://team-data/loans/loan_approval.xlsx"})
        }
    )
    with pytest.raises(DatasetError, match="unsupported file type"):
        backend.prepare_dataset(unchecked)
    with pytest.raises(DatasetError) as caught:  # the program's message, as it is
        backend.prepare_dataset(make_spec("s3://team-data/loans/loan_approval.csv", target="approvd"))
    assert str(caught.value).startswith("dataset.target 'approvd' is not a column")
    assert "did you mean 'approved'" in str(caught.value)
    with pytest.raises(DatasetError, match="set MLOPS_BUCKET"):
        S3DatasetBackend(Settings(home=Path("/x"), backend="aws"))
    no_image = dataclasses.replace(settings, training_images=SAGEMAKER_IMAGES)
    with pytest.raises(DatasetError, match="set MLOPS_TRAINING_IMAGE_PREPARATION"):
        S3DatasetBackend(no_image).prepare_dataset(make_spec("sklearn://digits"))


def test_a_failed_job_reports_sagemakers_reason_and_its_log(
    settings: Settings, s3: Any, moto_endpoint: str
) -> None:
    """A job that died before the program could write anything: SageMaker's FailureReason."""
    from moto.sagemaker.models import sagemaker_backends

    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=moto_endpoint)

    def fail(parsed: dict[str, Any], **_: Any) -> None:
        name = parsed["ProcessingJobArn"].rsplit("/", 1)[1]
        job = sagemaker_backends["123456789012"]["us-east-1"].processing_jobs[name]
        job.processing_job_status = "Failed"
        job.failure_reason = "ClientError: Cannot pull the image"

    sagemaker.meta.events.register("after-call.sagemaker.CreateProcessingJob", fail)
    backend = S3DatasetBackend(settings, s3_client=s3, sagemaker_client=sagemaker, poll_s=0.01)
    with pytest.raises(DatasetError) as caught:
        backend.prepare_dataset(make_spec("sklearn://breast_cancer"))
    message = str(caught.value)
    assert message.startswith("data preparation prepare-")
    assert (
        "failed: ClientError: Cannot pull the image (log: https://us-east-1.console.aws.amazon.com/"
        in message
    )


def test_a_long_job_is_waited_on_over_retried_calls_without_a_second_job(
    settings: Settings, s3: Any, moto_endpoint: str
) -> None:
    """A call answers TransientError when its wait budget runs out; the retry finds the same job."""
    from moto.sagemaker.models import sagemaker_backends

    jobs = sagemaker_backends["123456789012"]["us-east-1"].processing_jobs
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=moto_endpoint)
    created: list[dict[str, Any]] = []

    def still_running(parsed: dict[str, Any], **_: Any) -> None:
        jobs[parsed["ProcessingJobArn"].rsplit("/", 1)[1]].processing_job_status = "InProgress"

    sagemaker.meta.events.register(
        "provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: created.append(params)
    )
    sagemaker.meta.events.register("after-call.sagemaker.CreateProcessingJob", still_running)
    backend = S3DatasetBackend(
        settings, s3_client=s3, sagemaker_client=sagemaker, poll_s=0.01, wait_budget_s=0.2
    )
    spec = make_spec("sklearn://iris", split={"seed": 5})
    with pytest.raises(
        TransientError, match=r"processing job prepare-\w+ is still InProgress; retry to wait on"
    ):
        backend.prepare_dataset(spec)
    [params] = created
    ProcessingJobs(s3)(params)  # the job runs to its end and uploads its output, as SageMaker would
    jobs[params["ProcessingJobName"]].processing_job_status = "Completed"

    ref = backend.prepare_dataset(spec)

    assert len(created) == 1  # the retried call found the job by its name
    assert ref.split_sizes == {"train": 103, "validation": 23, "test": 23}


def test_feedback_rows_are_mounted_from_the_monitoring_prefix_and_join_the_data(
    backend: S3DatasetBackend, s3: Any, jobs: ProcessingJobs, tmp_path: Path
) -> None:
    from sklearn.datasets import load_wine

    labelled = load_wine(as_frame=True).frame.iloc[:8].copy()
    labelled["alcohol"] += 3.0  # shifted traffic: not duplicates of the source's rows
    labelled["target"] = ["class_0", "0", "1", "class_2", "2", "2", "1", "unknown"]
    buffer = io.BytesIO()
    labelled.to_parquet(buffer, index=False)
    key = "monitoring/wine-ep/mon-wine-ep-20261205000000/output/feedback.parquet"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    spec = make_spec("sklearn://wine")
    plain = backend.prepare_dataset(spec)

    ref = backend.prepare_dataset(spec, f"s3://{BUCKET}/{key}")

    assert (ref.rows_raw, ref.rows_feedback, ref.rows_removed["feedback"]) == (plain.rows_raw + 7, 7, 1)
    [job] = [p for p in jobs.created if p["ProcessingJobName"] == jobs.runs[-1]]  # type: ignore[attr-defined]
    [feedback] = [i["S3Input"] for i in job["ProcessingInputs"] if i["InputName"] == "feedback"]
    assert (feedback["S3Uri"], feedback["LocalPath"]) == (
        f"s3://{BUCKET}/{key}",
        "/opt/ml/processing/input/feedback",
    )
    local_home = tmp_path / "ws"
    copy = local_home / "monitoring" / "wine-ep" / "jobs" / "mon" / "output" / "feedback.parquet"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(buffer.getvalue())
    local = LocalDatasetBackend(Settings(home=local_home), base_dir=REPO_ROOT).prepare_dataset(
        spec, copy.as_uri()
    )
    assert (local.data_version, local.split_sizes) == (ref.data_version, ref.split_sizes)  # the same program

    for outside in (
        f"s3://team-data/{key}",
        f"s3://{BUCKET}/data/feedback.parquet",
        f"s3://{BUCKET}/monitoring/x.csv",
    ):
        with pytest.raises(DatasetError, match="not a monitoring job's feedback.parquet"):
            backend.prepare_dataset(spec, outside)
