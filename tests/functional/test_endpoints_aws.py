"""SageMakerEndpointBackend against a real moto server over HTTP.

moto implements CreateModel, CreateEndpointConfig, CreateEndpoint, DescribeEndpoint,
UpdateEndpointWeightsAndCapacities, InvokeEndpoint (static answers), CloudWatch alarms and
metric data, and Application Auto Scaling. UpdateEndpoint is not implemented: its requests are
validated by botocore against SageMaker's service model and applied at the edge
(``tests.sagemaker_endpoints``).
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mcp_server.backends.aws.endpoints import SageMakerEndpointBackend
from mcp_server.core.deployment.models import (
    AutoScaling,
    DesiredEndpoint,
    PackageRequest,
    Serverless,
    ServingModel,
    VariantState,
)
from mcp_server.errors import EndpointError, NotFoundError
from tests.functional.conftest import SAGEMAKER_ROLE
from tests.sagemaker_endpoints import UpdateEndpoint

BUCKET = "mlops-bucket"
INFERENCE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-inference:latest"
METADATA = {
    "algorithm": "xgboost",
    "feature_names": ["tenure", "plan"],
    "feature_types": {"tenure": "numeric", "plan": "categorical"},
}


@pytest.fixture(scope="module")
def world(sagemaker_settings: Any) -> Any:
    settings = type(sagemaker_settings)(
        **{**sagemaker_settings.__dict__, "training_images": {"inference": INFERENCE_IMAGE}}
    )

    def client(service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=settings.aws_endpoint_url)

    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for version in ("1", "2"):
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as bundle:
            data = json.dumps(METADATA).encode()
            info = tarfile.TarInfo("metadata.json")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
        s3.put_object(Bucket=BUCKET, Key=f"jobs/churn-{version}/output/model.tar.gz", Body=archive.getvalue())
    sagemaker = client("sagemaker")
    updates = UpdateEndpoint(sagemaker)
    backend = SageMakerEndpointBackend(settings, sagemaker=sagemaker)
    return {"backend": backend, "sagemaker": sagemaker, "updates": updates, "client": client}


def version(number: str, name: str = "churn") -> ServingModel:
    uri = f"s3://{BUCKET}/jobs/churn-{number}/output/model.tar.gz"
    return ServingModel(
        model_name=name,
        version=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{name}/{number}",
        semantic_version=f"1.{number}.0",
        model_uri=uri,
        model_data=uri,
        class_labels=["stays", "leaves"],
        algorithm="xgboost",
    )


def variant(number: str, weight: float, name: str = "churn") -> VariantState:
    return VariantState(
        name=f"v{number}", model=version(number, name), weight=weight, instance_type="ml.m5.large"
    )


def test_a_first_deployment_creates_the_model_config_endpoint_alarms_and_scaling(world):
    backend, sagemaker, client = world["backend"], world["sagemaker"], world["client"]
    endpoint = backend.apply(
        DesiredEndpoint(
            endpoint_name="churn",
            variants=[variant("1", 100)],
            data_capture_percent=20,
            auto_scaling=AutoScaling(min_instances=1, max_instances=3, target_invocations_per_instance=50),
            error_rate=0.02,
            p95_latency_ms=80,
            by="alice",
        )
    )
    assert endpoint.status == "InService" and endpoint.target == "sagemaker_endpoint"
    assert endpoint.url.endswith("/endpoints/churn/invocations")
    described = sagemaker.describe_endpoint(EndpointName="churn")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ModelName"] == "churn-v1"
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == f"s3://{BUCKET}/capture"
    model = sagemaker.describe_model(ModelName="churn-v1")
    assert model["PrimaryContainer"]["Image"] == INFERENCE_IMAGE
    assert model["PrimaryContainer"]["Environment"]["MLOPS_CLASS_LABELS"] == '["stays", "leaves"]'
    assert model["ExecutionRoleArn"] == SAGEMAKER_ROLE
    alarms = {a["AlarmName"]: a for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert alarms["churn-v1-p95-latency"]["Threshold"] == 80_000  # microseconds
    assert alarms["churn-v1-error-rate"]["Threshold"] == 0.02
    [target] = client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert (target["ResourceId"], target["MaxCapacity"]) == ("endpoint/churn/variant/v1", 3)
    assert [(e.action, e.by) for e in endpoint.history] == [("deploy", "alice")]


def test_a_canary_adds_a_variant_by_update_endpoint_then_shifts_weights(world):
    backend, sagemaker, updates = world["backend"], world["sagemaker"], world["updates"]
    backend.apply(
        DesiredEndpoint(endpoint_name="churn", variants=[variant("1", 90), variant("2", 10)], action="deploy")
    )
    request = updates.requests[-1]
    assert request["EndpointName"] == "churn" and "DeploymentConfig" not in request
    weights = {
        v["VariantName"]: v["CurrentWeight"]
        for v in sagemaker.describe_endpoint(EndpointName="churn")["ProductionVariants"]
    }
    assert weights == {"v1": 90, "v2": 10}

    shifted = backend.shift_traffic("churn", {"v1": 50, "v2": 50}, by="workflow", detail="step 2 of 3")
    assert {v.name: v.weight for v in shifted.variants} == {"v1": 50, "v2": 50}
    assert shifted.history[-1].action == "shift" and shifted.history[-1].detail == "step 2 of 3"
    with pytest.raises(EndpointError, match="has no variant v7"):
        backend.shift_traffic("churn", {"v7": 100})


def test_blue_green_updates_with_the_alarms_as_auto_rollback(world):
    backend, updates = world["backend"], world["updates"]
    backend.apply(
        DesiredEndpoint(
            endpoint_name="churn", variants=[variant("2", 100)], blue_green=True, bake_s=120, action="promote"
        )
    )
    policy = updates.requests[-1]["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 120
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert {a["AlarmName"] for a in policy["AutoRollbackConfiguration"]["Alarms"]} == {
        "churn-v2-error-rate",
        "churn-v2-p95-latency",
    }
    assert [v.name for v in backend.describe_endpoint("churn").variants] == ["v2"]


def test_metrics_are_read_per_variant_from_cloudwatch(world):
    backend, client = world["backend"], world["client"]
    now = datetime.now(UTC)
    dimensions = [{"Name": "EndpointName", "Value": "churn"}, {"Name": "VariantName", "Value": "v2"}]
    client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 200, "Timestamp": now},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dimensions, "Value": 6, "Timestamp": now},
            {"MetricName": "Invocation4XXErrors", "Dimensions": dimensions, "Value": 3, "Timestamp": now},
        ],
    )
    metrics = backend.get_endpoint_metrics("churn", since=now.timestamp() - 120)
    v2 = metrics.variants["v2"]
    assert (v2.requests, v2.errors_5xx, v2.errors_4xx) == (200, 6, 3)
    assert v2.error_rate == pytest.approx(0.03)


def test_invocations_go_through_the_sagemaker_runtime(world):
    answer = world["backend"].invoke_endpoint("churn", b"12,gold", "text/csv")
    assert answer.status == 200 and answer.body  # moto's static answer


def test_an_endpoint_of_another_model_and_an_unknown_one_are_refused(world):
    backend = world["backend"]
    with pytest.raises(EndpointError, match="endpoint churn serves model churn, not fraud"):
        backend.apply(DesiredEndpoint(endpoint_name="churn", variants=[variant("1", 100, name="fraud")]))
    with pytest.raises(NotFoundError, match="no endpoint named ghost"):
        backend.describe_endpoint("ghost")


def test_a_serverless_endpoint_has_a_serverless_config_and_no_capture(world):
    backend, sagemaker = world["backend"], world["sagemaker"]
    backend.apply(
        DesiredEndpoint(
            endpoint_name="churn-serverless",
            variants=[variant("1", 100)],
            serverless=Serverless(memory_mb=3072, max_concurrency=7),
            data_capture_percent=0,
        )
    )
    name = sagemaker.describe_endpoint(EndpointName="churn-serverless")["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 7,
    }
    assert "InstanceType" not in config["ProductionVariants"][0]
    assert not config.get("DataCaptureConfig")  # moto echoes an absent one as {}


def test_packaging_writes_the_files_beside_the_version_on_s3(world):
    files = world["backend"].package_model(PackageRequest(model=version("1")))
    assert files.openapi_uri == f"s3://{BUCKET}/models/churn/1.1.0/package/openapi.json"
    assert files.image_uri == INFERENCE_IMAGE
    body = world["client"]("s3").get_object(Bucket=BUCKET, Key="models/churn/1.1.0/package/openapi.json")[
        "Body"
    ]
    document = json.loads(body.read())
    assert "tenure" in json.dumps(document) and document["openapi"].startswith("3.")


def test_a_sagemaker_refusal_is_an_endpoint_error_naming_its_code(world):
    backend, sagemaker = world["backend"], world["sagemaker"]
    backend.apply(DesiredEndpoint(endpoint_name="churn-gone", variants=[variant("1", 100)]))
    sagemaker.delete_endpoint(EndpointName="churn-gone")  # removed behind the project's back
    with pytest.raises(
        EndpointError, match=r"shift the traffic of endpoint churn-gone: SageMaker refused it \(Validation"
    ):
        backend.shift_traffic("churn-gone", {"v1": 100})
    described = backend.describe_endpoint("churn-gone")
    assert described.status == "Failed" and "no longer exists" in described.failure_reason


def test_deleting_keeps_the_history_and_removes_the_alarms(world):
    backend, client = world["backend"], world["client"]
    stopped = backend.delete_endpoint("churn", by="bob")
    assert stopped.status == "Stopped"
    assert stopped.history[-1].action == "delete"
    names = {a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert not any(name.startswith("churn-v2") for name in names)
    assert [e.name for e in backend.list_endpoints()] == ["churn", "churn-gone", "churn-serverless"]
