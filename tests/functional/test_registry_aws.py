"""SageMakerRegistryBackend against a real moto server over HTTP: model package groups and packages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from mcp_server.backends.aws.registry import SageMakerRegistryBackend, customer_metadata
from mcp_server.core.models import Lineage, RegistrationRequest
from mcp_server.errors import NotFoundError, RegistryError, TransientError

FEATURES = [f"feature_{n}_with_a_long_descriptive_name" for n in range(40)]  # a schema over 256 chars


def make_request(job: str, model: str = "churn", **extra: Any) -> RegistrationRequest:
    values: dict[str, Any] = {
        "model_name": model,
        "model_uri": f"s3://mlops-bucket/jobs/{job}/output/model.tar.gz",
        "tracking_run_id": None,
        "metrics": {"f1": 0.91, "accuracy": 0.93},
        "lineage": Lineage(
            issue_number=12,
            issue_url="https://github.com/acme/models/issues/12",
            execution_name=f"issue-12-{job}",
            job_name=job,
            spec_hash="5pec5pec5pec",
            data_version="d474d474d474",
            dataset_id="churn-d474d474d474",
        ),
        "model_type": "supervised_learning",
        "algorithm": "xgboost",
        "feature_names": FEATURES,
        "hyperparameters": {"max_depth": 4},
        "preprocessing": {"scaling": "standard"},
        "baseline_uri": f"s3://mlops-bucket/evaluations/{job}/baseline/baseline.json",
    }
    values.update(extra)
    return RegistrationRequest(**values)


@pytest.fixture
def sagemaker(sagemaker_settings: Any) -> Any:
    return boto3.client(
        "sagemaker", region_name="us-east-1", endpoint_url=sagemaker_settings.aws_endpoint_url
    )


@pytest.fixture
def backend(sagemaker_settings: Any, sagemaker: Any) -> SageMakerRegistryBackend:
    return SageMakerRegistryBackend(
        sagemaker_settings, sagemaker_client=sagemaker, predecessor_wait_s=5, poll_s=0.05
    )


def test_a_registration_is_a_model_package_with_metrics_lineage_and_semantic_version(
    backend: SageMakerRegistryBackend, sagemaker: Any
) -> None:
    model = backend.register_model(make_request("job-1", model="reg-first"))

    package = sagemaker.describe_model_package(ModelPackageName=model.model_uri)
    assert (model.name, model.version, model.semantic_version) == ("reg-first", "1", "1.0.0")
    assert model.aliases == ["challenger"]
    assert package["ModelPackageGroupName"] == "reg-first"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    [container] = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == "s3://mlops-bucket/jobs/job-1/output/model.tar.gz"
    assert container["Image"].endswith("mlops-train-xgboost:1")
    properties = package["CustomerMetadataProperties"]
    assert properties["semantic_version"] == "1.0.0"
    assert properties["metric.f1"] == "0.91"
    assert properties["job_name"] == "job-1"
    assert properties["data_version"] == "d474d474d474"
    assert properties["feature_schema"].startswith('["sha256:')  # a digest: 40 names fit 256 characters
    assert all(len(value) <= 256 for value in properties.values())
    assert package["MetadataProperties"]["GeneratedBy"] == "issue-12-job-1"
    assert package["MetadataProperties"]["Repository"] == "https://github.com/acme/models/issues/12"
    statistics = package["ModelMetrics"]["ModelDataQuality"]["Statistics"]
    assert statistics["S3Uri"] == "s3://mlops-bucket/evaluations/job-1/baseline/baseline.json"
    assert sagemaker.describe_model_package_group(ModelPackageGroupName="reg-first")["ModelPackageGroupName"]


def test_registering_a_job_twice_returns_its_package_and_changes_bump_the_version(
    backend: SageMakerRegistryBackend, sagemaker: Any
) -> None:
    first = backend.register_model(make_request("job-a", model="reg-bumps"))
    again = backend.register_model(make_request("job-a", model="reg-bumps"))
    retrained = backend.register_model(make_request("job-b", model="reg-bumps"))
    tuned = backend.register_model(make_request("job-c", model="reg-bumps", hyperparameters={"max_depth": 6}))
    reshaped = backend.register_model(make_request("job-d", model="reg-bumps", feature_names=FEATURES[:-1]))

    assert again == first
    assert [m.semantic_version for m in (first, retrained, tuned, reshaped)] == [
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    listed = sagemaker.list_model_packages(ModelPackageGroupName="reg-bumps")["ModelPackageSummaryList"]
    assert len(listed) == 4


def test_concurrent_registrations_get_distinct_versions(sagemaker_settings: Any) -> None:
    def register(job: str) -> Any:  # a client each, as separate agents would have
        client = boto3.client(
            "sagemaker", region_name="us-east-1", endpoint_url=sagemaker_settings.aws_endpoint_url
        )
        backend = SageMakerRegistryBackend(sagemaker_settings, sagemaker_client=client, poll_s=0.05)
        return backend.register_model(make_request(job, model="reg-concurrent"))

    with ThreadPoolExecutor(max_workers=6) as pool:
        models = list(pool.map(register, [f"job-{n}" for n in range(6)]))

    by_version = sorted(models, key=lambda m: int(m.version))
    assert [m.version for m in by_version] == ["1", "2", "3", "4", "5", "6"]
    assert [m.semantic_version for m in by_version] == ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"]


def test_a_registration_that_crashed_before_its_semantic_version_is_finished(
    backend: SageMakerRegistryBackend, sagemaker: Any
) -> None:
    backend.register_model(make_request("job-1", model="reg-crash"))
    request = make_request("job-2", model="reg-crash", hyperparameters={"max_depth": 9})
    arn = sagemaker.create_model_package(  # what a crash right after CreateModelPackage leaves
        ModelPackageGroupName="reg-crash",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": request.model_uri}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=customer_metadata(request),
    )["ModelPackageArn"]

    finished = backend.register_model(request)

    assert finished.model_uri == arn
    assert (finished.version, finished.semantic_version) == ("2", "1.1.0")
    assert (
        len(sagemaker.list_model_packages(ModelPackageGroupName="reg-crash")["ModelPackageSummaryList"]) == 2
    )


def test_a_predecessor_stuck_without_a_semantic_version_is_a_transient_error(
    sagemaker_settings: Any, sagemaker: Any
) -> None:
    stuck = make_request("job-stuck", model="reg-stuck")
    sagemaker.create_model_package_group(ModelPackageGroupName="reg-stuck")
    sagemaker.create_model_package(
        ModelPackageGroupName="reg-stuck",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": stuck.model_uri}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties=customer_metadata(stuck),
    )
    backend = SageMakerRegistryBackend(sagemaker_settings, sagemaker_client=sagemaker, predecessor_wait_s=0.3)

    with pytest.raises(TransientError, match="version 1 of reg-stuck has no semantic version after 0.3 s"):
        backend.register_model(make_request("job-next", model="reg-stuck"))


def test_packages_registered_by_hand_are_skipped(backend: SageMakerRegistryBackend, sagemaker: Any) -> None:
    sagemaker.create_model_package_group(ModelPackageGroupName="reg-hand")
    sagemaker.create_model_package(
        ModelPackageGroupName="reg-hand",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )

    model = backend.register_model(make_request("job-1", model="reg-hand"))

    assert (model.version, model.semantic_version) == ("2", "1.0.0")


def test_refusals_are_registry_errors(backend: SageMakerRegistryBackend, sagemaker_settings: Any) -> None:
    with pytest.raises(RegistryError, match="needs the training job's s3:// model artifact"):
        backend.register_model(make_request("job-x", model="reg-refused", model_uri="file:///tmp/model"))
    with pytest.raises(RegistryError, match="MLOPS_TRAINING_IMAGE_PYTORCH"):
        backend.register_model(make_request("job-y", model="reg-refused", algorithm="neural_network"))


def test_set_champion_approves_the_package_and_keeps_its_metadata(
    backend: SageMakerRegistryBackend, sagemaker: Any
) -> None:
    backend.register_model(make_request("job-champion-1", model="reg-champion"))
    second = backend.register_model(make_request("job-champion-2", model="reg-champion"))
    promoted = backend.set_champion("reg-champion", "2")
    assert promoted.aliases == ["champion"] and promoted.semantic_version == second.semantic_version
    package = sagemaker.describe_model_package(ModelPackageName=second.model_uri)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["job_name"] == "job-champion-2"
    with pytest.raises(NotFoundError, match="no version 7 of model package group reg-champion"):
        backend.set_champion("reg-champion", "7")
