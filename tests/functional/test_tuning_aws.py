"""SageMakerTuningBackend's requests against a real moto server over HTTP (no in-process mock).

What moto 5.2.5 implements of SageMaker's automatic model tuning: ``CreateHyperParameterTuningJob``
stores the request (botocore first validates it against SageMaker's API model: required fields,
types, enumerations, minimums) and ``DescribeHyperParameterTuningJob`` returns it, with the status
Completed at once and a fixed, fake ``BestTrainingJob``. It launches no training job, and
``ListTrainingJobsForHyperParameterTuningJob`` is not implemented (HTTP 500,
``NotImplementedError``). So these tests send the definition the backend builds to moto and read
it back, and map moto's real describe response together with trial summaries written in the
shape of the API reference's ``HyperParameterTrainingJobSummary``; the backend's
``describe_tuning_job`` of an existing job (which lists the trials) is not exercised here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from mcp_server.backends.aws.tuning import SageMakerTuningBackend, to_tuning_job, tuning_job_definition
from mcp_server.core.models import TrainingJobRequest, TuningJobRequest
from mcp_server.core.spec.schema import ComputeSpec, PreprocessingSpec, TuningSpec
from mcp_server.errors import NotFoundError, TrainingJobError
from tests.functional.conftest import SAGEMAKER_IMAGES


@pytest.fixture(scope="module")
def client(sagemaker_settings):
    return boto3.client(
        "sagemaker", region_name="us-east-1", endpoint_url=sagemaker_settings.aws_endpoint_url
    )


SPACE = {
    "max_depth": {"type": "int", "low": 2, "high": 8},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "n_estimators": {"type": "categorical", "values": [100, 200]},
}


def make_request(name: str, use_spot: bool = True, **tuning) -> TuningJobRequest:
    spec = TuningSpec.model_validate(
        {"objective": "f1", "max_trials": 6, "parallel_trials": 2, "search_space": SPACE, **tuning}
    )
    training = TrainingJobRequest(
        job_name=name,
        task="classification",
        algorithm="xgboost",
        hyperparameters={"n_estimators": 300, "max_depth": 6, "learning_rate": 0.3, "subsample": 0.9},
        preprocessing=PreprocessingSpec(),
        target="target",
        feature_types={"a": "numeric"},
        channels={
            "train": "s3://mlops-bucket/datasets/d1/processed/train/",
            "validation": "s3://mlops-bucket/datasets/d1/processed/validation/",
        },
        seed=42,
        compute=ComputeSpec(use_spot=use_spot, max_runtime_s=900),
        experiment="issue-3",
        tags={"issue": "3", "spec_hash": "abc123"},
    )
    return TuningJobRequest(tuning_job_name=name, tuning=spec, training=training)


def test_the_tuning_section_maps_onto_create_hyper_parameter_tuning_job(sagemaker_settings, client):
    definition = tuning_job_definition(make_request("issue-3-tune-a1"), sagemaker_settings)
    client.create_hyper_parameter_tuning_job(**definition)  # botocore validates against the API model
    described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="issue-3-tune-a1")

    config = described["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation_f1"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
    assert config["RandomSeed"] == 42 and config["TrainingJobEarlyStoppingType"] == "Off"
    ranges = config["ParameterRanges"]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "max_depth", "MinValue": "2", "MaxValue": "8", "ScalingType": "Linear"}
    ]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.01", "MaxValue": "0.3", "ScalingType": "Logarithmic"}
    ]
    assert ranges["CategoricalParameterRanges"] == [{"Name": "n_estimators", "Values": ["100", "200"]}]

    job = described["TrainingJobDefinition"]
    static = job["StaticHyperParameters"]
    assert not {"max_depth", "learning_rate", "n_estimators"} & set(static)  # searched, not static
    assert static["subsample"] == "0.9" and static["_algorithm"] == '"xgboost"'
    assert json.loads(static["_preprocessing"])["scaling"] == "standard"
    assert job["AlgorithmSpecification"]["TrainingImage"] == SAGEMAKER_IMAGES["xgboost"]
    metrics = {d["Name"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "validation_f1" in metrics  # the objective is captured from the trials' logs
    assert job["OutputDataConfig"] == {"S3OutputPath": "s3://mlops-bucket/jobs/"}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800}
    assert "CheckpointConfig" not in job
    assert {"Key": "tuning_job", "Value": "issue-3-tune-a1"} in definition["Tags"]


def test_grid_search_runs_its_whole_grid(sagemaker_settings, client):
    grid = {"n_estimators": {"type": "categorical", "values": [100, 200, 400]}}
    request = make_request("issue-3-grid-a1", strategy="grid", max_trials=20, search_space=grid)
    definition = tuning_job_definition(request, sagemaker_settings)
    client.create_hyper_parameter_tuning_job(**definition)
    config = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="issue-3-grid-a1")[
        "HyperParameterTuningJobConfig"
    ]
    assert config["Strategy"] == "Grid"
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 3
    assert config["ParameterRanges"]["IntegerParameterRanges"] == []
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "n_estimators", "Values": ["100", "200", "400"]}
    ]


def test_a_minimised_objective_and_an_uncaptured_one(sagemaker_settings):
    request = make_request("issue-3-min-a1", objective="log_loss", use_spot=False)
    definition = tuning_job_definition(request, sagemaker_settings)
    assert definition["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize",
        "MetricName": "validation_log_loss",
    }
    assert definition["TrainingJobDefinition"]["EnableManagedSpotTraining"] is False
    with pytest.raises(TrainingJobError, match="objective validation_silhouette is not a metric"):
        tuning_job_definition(make_request("issue-3-bad-a1", objective="silhouette"), sagemaker_settings)


def summary(name: str, minute: int, status: str, value: float | None = None, **extra) -> dict:
    """A ``HyperParameterTrainingJobSummary`` as the API reference describes it."""
    created = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    item = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CreationTime": created,
        "TrainingStartTime": created,
        "TrainingEndTime": created + timedelta(seconds=90),
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"max_depth": "4", "learning_rate": "0.05", "n_estimators": "200"},
        "ObjectiveStatus": "Succeeded" if value is not None else "Failed",
        **extra,
    }
    if value is not None:
        item["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Maximize",
            "MetricName": "validation_f1",
            "Value": value,
        }
    return item


def test_describe_maps_the_search_and_its_trials(sagemaker_settings, client):
    client.create_hyper_parameter_tuning_job(
        **tuning_job_definition(make_request("issue-3-map-a1"), sagemaker_settings)
    )
    described = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="issue-3-map-a1")
    summaries = [
        summary("issue-3-map-a1-002-bbb", 2, "Failed", FailureReason="AlgorithmError: boom"),
        summary("issue-3-map-a1-001-aaa", 1, "Completed", 0.93),
        summary("issue-3-map-a1-003-ccc", 3, "Completed", 0.97),
    ]
    job = to_tuning_job(described, summaries)
    assert job.status == "Completed" and job.algorithm == "xgboost" and job.strategy == "bayesian"
    assert (job.objective_metric, job.direction, job.max_trials, job.parallel_trials) == (
        "validation_f1",
        "maximize",
        6,
        2,
    )
    assert [t.job_name[-3:] for t in job.trials] == ["aaa", "bbb", "ccc"]  # numbered by creation time
    first, failed, third = job.trials
    assert first.hyperparameters == {"max_depth": 4, "learning_rate": 0.05, "n_estimators": 200}
    assert first.objective == 0.93 and first.duration_s == 90
    assert failed.status == "Failed" and failed.failure_reason == "AlgorithmError: boom"
    assert job.best_trial == 3  # moto's BestTrainingJob is fake, so the best is found from the trials
    assert job.started_at.endswith("Z")

    all_failed = to_tuning_job(described, [summaries[0]])
    assert all_failed.status == "Failed" and all_failed.failure_reason.endswith("AlgorithmError: boom")


def test_unknown_tuning_job_raises_not_found(sagemaker_settings, client):
    backend = SageMakerTuningBackend(sagemaker_settings, sagemaker_client=client)
    with pytest.raises(NotFoundError, match="no-such-search"):
        backend.describe_tuning_job("no-such-search")
