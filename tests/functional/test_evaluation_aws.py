"""SageMakerEvaluationBackend against a moto server: the evaluation as a processing job on S3.

moto records the processing job; ``tests/sagemaker_jobs.py`` runs the real evaluation program on
what the job's inputs hold on S3 and uploads its output, as SageMaker would. The report must
match the local backend's for the same model and data: one program, two backends.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from xgboost import XGBClassifier

from mcp_server.backends.aws.evaluation import SageMakerEvaluationBackend, processing_job_definition
from mcp_server.backends.local.evaluation import LocalEvaluationBackend
from mcp_server.core.models import DatasetRef, EvaluationRequest
from mcp_server.errors import EvaluationError
from mcp_server.settings import Settings
from tests.conftest import make_model_folder
from tests.functional.conftest import SAGEMAKER_IMAGES
from tests.functional.test_evaluation_local import PNG_MAGIC, prepare
from tests.sagemaker_jobs import run_processing_jobs, upload_folder

BUCKET = "mlops-bucket"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-evaluation:1"


def model_tarball(folder: Path) -> bytes:
    """The folder as SageMaker packs a training job's model: ``model.tar.gz`` of its files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for path in sorted(folder.iterdir()):
            bundle.add(path, arcname=path.name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def world(sagemaker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A prepared dataset and a trained model, locally and copied to S3 where a run puts them."""
    local = Settings(home=tmp_path_factory.mktemp("evaluation-aws"), allow_write=True)
    ref = prepare(local, "sklearn://breast_cancer", "classification")
    model = make_model_folder(
        local.home / "jobs" / "xgb",
        ref,
        XGBClassifier(n_estimators=50, max_depth=3, n_jobs=1, random_state=0),
        "xgboost",
    )
    endpoint = sagemaker_settings.aws_endpoint_url
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    splits = {}
    for name, uri in ref.splits.items():
        prefix = f"s3://{BUCKET}/datasets/{ref.dataset_id}/processed/{name}"
        upload_folder(s3, Path(uri.removeprefix("file://")), prefix)
        splits[name] = prefix + "/"
    model_uri = f"s3://{BUCKET}/jobs/xgb-train-a1/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key="jobs/xgb-train-a1/output/model.tar.gz", Body=model_tarball(model))
    settings = Settings(
        home=Path("/nonexistent"),
        backend="aws",
        s3_bucket=BUCKET,
        sagemaker_role_arn=sagemaker_settings.sagemaker_role_arn,
        training_images={**SAGEMAKER_IMAGES, "evaluation": IMAGE},
        aws_endpoint_url=endpoint,
    )
    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=endpoint)
    return {
        "local": local,
        "ref": ref,
        "model": model,
        "s3_ref": ref.model_copy(update={"splits": splits}),
        "model_uri": model_uri,
        "settings": settings,
        "s3": s3,
        "sagemaker": sagemaker,
        "jobs": run_processing_jobs(sagemaker, s3),
    }


def backend(world: dict[str, Any]) -> SageMakerEvaluationBackend:
    return SageMakerEvaluationBackend(
        world["settings"], sagemaker_client=world["sagemaker"], s3_client=world["s3"], poll_s=0.05
    )


def request(evaluation_id: str, ref: DatasetRef, model_uri: str) -> EvaluationRequest:
    return EvaluationRequest(
        evaluation_id=evaluation_id, task="classification", model_uri=model_uri, dataset=ref, metrics=["f1"]
    )


def test_the_processing_job_gives_the_local_evaluations_report(world: dict[str, Any]) -> None:
    report = backend(world).evaluate_model(request("eval-aws-1", world["s3_ref"], world["model_uri"]))
    local = LocalEvaluationBackend(world["local"]).evaluate_model(
        request("eval-local-1", world["ref"], world["model"].as_uri())
    )

    assert world["jobs"].runs == ["eval-aws-1"], world["jobs"].logs
    assert report.metrics == pytest.approx(local.metrics)
    assert report.validation_metrics == pytest.approx(local.validation_metrics)
    assert report.n_test == local.n_test > 0
    assert set(report.plots) == set(local.plots)
    prefix = f"s3://{BUCKET}/evaluations/eval-aws-1/output"
    assert report.report_uri == f"{prefix}/report.json"
    assert report.baseline_uri == f"{prefix}/baseline/baseline.json"
    for uri in report.plots.values():
        assert uri.startswith(prefix + "/plots/")
        key = uri.removeprefix(f"s3://{BUCKET}/")
        assert world["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()[:8] == PNG_MAGIC
    job = world["sagemaker"].describe_processing_job(ProcessingJobName="eval-aws-1")
    assert job["AppSpecification"]["ImageUri"] == IMAGE
    assert "logStreamNameFilter$3Deval-aws-1" in report.log_uri
    config = world["s3"].get_object(Bucket=BUCKET, Key="evaluations/eval-aws-1/input/config/evaluation.json")
    assert b'"metrics": [\n    "f1"\n  ]' in config["Body"].read()

    again = backend(world).evaluate_model(request("eval-aws-1", world["s3_ref"], world["model_uri"]))
    assert again == report
    assert world["jobs"].runs == ["eval-aws-1"]  # the report on S3 is reused, no second job


def test_a_failing_job_is_an_evaluation_error_with_the_programs_reason(world: dict[str, Any]) -> None:
    world["s3"].put_object(Bucket=BUCKET, Key="jobs/broken/output/model.tar.gz", Body=b"not a tarball")

    with pytest.raises(
        EvaluationError, match=r"(?s)eval-aws-broken failed: ReadError: .*not a gzip file.*log: https://"
    ):
        backend(world).evaluate_model(
            request("eval-aws-broken", world["s3_ref"], f"s3://{BUCKET}/jobs/broken/output/model.tar.gz")
        )


def test_what_the_job_cannot_run_is_refused_before_it_starts(world: dict[str, Any]) -> None:
    runs = list(world["jobs"].runs)
    local_inputs = request("eval-aws-local", world["ref"], world["model_uri"])
    with pytest.raises(EvaluationError, match="the evaluation's train input must be on S3"):
        backend(world).evaluate_model(local_inputs)
    with pytest.raises(EvaluationError, match="set MLOPS_TRAINING_IMAGE_EVALUATION"):
        processing_job_definition(
            local_inputs, "s3://b/e", Settings(home=Path("/x"), sagemaker_role_arn="arn:aws:iam::1:role/r")
        )
    with pytest.raises(EvaluationError, match="unknown classification metrics"):
        backend(world).evaluate_model(local_inputs.model_copy(update={"metrics": ["rmse"]}))
    assert world["jobs"].runs == runs


def test_the_model_tarball_is_unpacked_inside_the_job_folder_only(tmp_path: Path) -> None:
    from training_containers.evaluation.processing import ProcessingContract

    contract = ProcessingContract.from_env({"MLOPS_PROCESSING_ROOT": str(tmp_path / "job")})
    contract.model_dir.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data in (("model.joblib", b"m"), ("metadata.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    (contract.model_dir / "model.tar.gz").write_bytes(buffer.getvalue())

    unpacked = contract.unpacked()

    assert unpacked.model_dir == tmp_path / "job" / "model"
    assert (unpacked.model_dir / "model.joblib").read_bytes() == b"m"
    assert ProcessingContract.from_env(
        {"MLOPS_PROCESSING_ROOT": str(tmp_path / "none")}
    ).unpacked().model_dir == (
        tmp_path / "none" / "input" / "model"
    )  # a model folder (local jobs) is used as it is

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as bundle:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 1
        bundle.addfile(info, io.BytesIO(b"x"))
    (contract.model_dir / "model.tar.gz").write_bytes(evil.getvalue())
    with pytest.raises(tarfile.OutsideDestinationError):
        contract.unpacked()
    assert not (tmp_path / "escaped.txt").exists()
