"""SageMakerTrainingBackend against a real moto server over HTTP (no in-process mock)."""

from __future__ import annotations

import json

import boto3
import pytest

from mcp_server.backends.aws.training import SageMakerTrainingBackend
from mcp_server.core.models import TrainingJobRequest
from mcp_server.core.spec.schema import ComputeSpec, FeatureSelectionSpec, PreprocessingSpec
from mcp_server.errors import NotFoundError, TrainingJobError
from mcp_server.settings import Settings
from tests.functional.conftest import SAGEMAKER_IMAGES, SAGEMAKER_ROLE


@pytest.fixture(scope="module")
def sent_requests(sagemaker_settings):
    """A client that records the parameters of every CreateTrainingJob call it sends."""
    client = boto3.client(
        "sagemaker", region_name="us-east-1", endpoint_url=sagemaker_settings.aws_endpoint_url
    )
    sent: list[dict] = []
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: sent.append(json.loads(json.dumps(params))),
    )
    return client, sent


@pytest.fixture(scope="module")
def backend(sagemaker_settings, sent_requests):
    return SageMakerTrainingBackend(sagemaker_settings, sagemaker_client=sent_requests[0])


def make_request(job_name: str, **extra) -> TrainingJobRequest:
    values = {
        "job_name": job_name,
        "task": "classification",
        "algorithm": "xgboost",
        "hyperparameters": {
            "n_estimators": 200,
            "max_depth": 4,
            "learning_rate": 0.1,
            "early_stopping_rounds": None,
        },
        "preprocessing": PreprocessingSpec(feature_selection=FeatureSelectionSpec(method="importance", k=5)),
        "target": "target",
        "feature_types": {"a": "numeric", "b": "categorical"},
        "channels": {
            "train": "s3://mlops-bucket/datasets/d1/processed/train/",
            "validation": "s3://mlops-bucket/datasets/d1/processed/validation/",
        },
        "compute": ComputeSpec(
            instance_type="ml.m5.xlarge", use_spot=True, max_runtime_s=3600, volume_size_gb=50
        ),
        "experiment": "issue-3",
        "tags": {"issue": "3", "spec_hash": "abc123"},
    }
    values.update(extra)
    return TrainingJobRequest(**values)


def test_create_training_job_sends_the_sagemaker_definition(backend, sent_requests, sagemaker_settings):
    job = backend.start_training_job(make_request("xgb-spot"))
    client, sent = sent_requests
    described = client.describe_training_job(TrainingJobName="xgb-spot")

    hyperparameters = described["HyperParameters"]
    assert all(isinstance(value, str) for value in hyperparameters.values())
    assert hyperparameters["n_estimators"] == "200"
    assert hyperparameters["learning_rate"] == "0.1"
    assert hyperparameters["early_stopping_rounds"] == "null"
    assert hyperparameters["_algorithm"] == '"xgboost"'
    assert json.loads(hyperparameters["_feature_types"]) == {"a": "numeric", "b": "categorical"}
    preprocessing = json.loads(hyperparameters["_preprocessing"])
    assert preprocessing["feature_selection"] == {"method": "importance", "k": 5}
    assert described["AlgorithmSpecification"]["TrainingImage"] == SAGEMAKER_IMAGES["xgboost"]
    assert described["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert described["RoleArn"] == SAGEMAKER_ROLE
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in described["InputDataConfig"]}
    assert channels["train"] == {
        "S3DataType": "S3Prefix",
        "S3DataDistributionType": "FullyReplicated",
        "S3Uri": "s3://mlops-bucket/datasets/d1/processed/train/",
    }
    assert set(channels) == {"train", "validation"}
    assert described["OutputDataConfig"]["S3OutputPath"] == "s3://mlops-bucket/jobs/"
    assert described["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 50,
    }
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert described["EnableManagedSpotTraining"] is True
    assert described["CheckpointConfig"]["S3Uri"] == "s3://mlops-bucket/jobs/xgb-spot/checkpoints/"
    # moto replaces MetricDefinitions with a fixed sample, so read what the client sent.
    definitions = {d["Name"]: d["Regex"] for d in sent[-1]["AlgorithmSpecification"]["MetricDefinitions"]}
    assert definitions["validation_f1"] == "validation_f1=([-+0-9.eE]+)"
    assert definitions["train_log_loss"] == "train_log_loss=([-+0-9.eE]+)"
    assert len(definitions) == 12
    assert {"Key": "issue", "Value": "3"} in sent[-1]["Tags"]
    assert job.job_name == "xgb-spot"


def test_describe_maps_status_artifacts_and_times(backend):
    backend.start_training_job(make_request("xgb-described"))
    job = backend.describe_training_job("xgb-described")
    assert job.status == "Completed"  # moto's training jobs complete at once
    assert job.secondary_status == "Completed"
    assert job.algorithm == "xgboost"
    assert job.model_uri == "s3://mlops-bucket/jobs/xgb-described/output/model.tar.gz"
    assert job.metrics == {"train:progress": 100.0}  # moto's fixed final metric
    assert job.started_at.endswith("Z") and job.ended_at.endswith("Z")
    assert job.duration_s is not None and job.duration_s >= 0
    assert "xgb-described" in job.log_uri


def test_on_demand_job_has_no_spot_settings(backend, sent_requests):
    request = make_request(
        "rf-on-demand",
        algorithm="random_forest",
        task="regression",
        hyperparameters={"n_estimators": 50},
        compute=ComputeSpec(max_runtime_s=600),
    )
    backend.start_training_job(request)
    client, sent = sent_requests
    described = client.describe_training_job(TrainingJobName="rf-on-demand")
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 600}
    assert described["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in sent[-1]
    assert described["AlgorithmSpecification"]["TrainingImage"] == SAGEMAKER_IMAGES["sklearn"]
    names = {d["Name"] for d in sent[-1]["AlgorithmSpecification"]["MetricDefinitions"]}
    assert names == {f"{s}_{m}" for s in ("train", "validation") for m in ("rmse", "mae", "r2", "mape")}


def test_spot_wait_time_comes_from_max_wait_s(backend, sent_requests):
    compute = ComputeSpec(use_spot=True, max_runtime_s=1000, max_wait_s=5000)
    request = make_request("xgb-wait", compute=compute)
    backend.start_training_job(request)
    described = sent_requests[0].describe_training_job(TrainingJobName="xgb-wait")
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 1000, "MaxWaitTimeInSeconds": 5000}


def test_starting_an_existing_job_describes_it_instead(backend, sent_requests):
    _, sent = sent_requests
    first = backend.start_training_job(make_request("xgb-once"))
    created = len(sent)
    second = backend.start_training_job(make_request("xgb-once", hyperparameters={"n_estimators": 5}))
    assert len(sent) == created  # no second CreateTrainingJob
    assert second == first


def test_unknown_job_raises_not_found(backend):
    with pytest.raises(NotFoundError, match="no-such-job"):
        backend.describe_training_job("no-such-job")


def test_default_client_uses_the_endpoint_from_settings(sagemaker_settings):
    backend = SageMakerTrainingBackend(sagemaker_settings)
    assert backend.start_training_job(make_request("own-client")).status == "Completed"


def test_refuses_jobs_it_cannot_define(backend, sagemaker_settings):
    with pytest.raises(TrainingJobError, match="s3:// prefixes"):
        backend.start_training_job(make_request("local-channel", channels={"train": "file:///tmp/train"}))
    no_images = SageMakerTrainingBackend(
        Settings(
            home=sagemaker_settings.home,
            s3_bucket="b",
            sagemaker_role_arn=SAGEMAKER_ROLE,
            aws_endpoint_url=sagemaker_settings.aws_endpoint_url,
        )
    )
    with pytest.raises(TrainingJobError, match="MLOPS_TRAINING_IMAGE_SKLEARN"):
        no_images.start_training_job(make_request("no-image", algorithm="random_forest"))
    with pytest.raises(TrainingJobError, match="characters"):
        backend.start_training_job(make_request("long-value", target="t" * 2600))
    with pytest.raises(NotFoundError):
        backend.describe_training_job("local-channel")
