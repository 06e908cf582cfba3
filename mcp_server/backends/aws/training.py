"""SageMaker training jobs through boto3's ``sagemaker`` client.

The job runs the family's training image (``settings.training_images[family]``, built from
``training_containers/<family>/Dockerfile``) with the same program and hyperparameters as a
local job: every value JSON-encoded to a string, plus the reserved keys ``_algorithm``,
``_task``, ``_target``, ``_preprocessing``, ``_feature_types`` and ``_seed``. SageMaker captures
the printed ``{split}_{metric}=value`` lines through metric definitions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mcp_server.backends.aws.clients import aws_client, aws_error, error_code
from mcp_server.backends.base import TrainingBackend
from mcp_server.core.jobs import requests as jobs
from mcp_server.core.models import TrainingJob, TrainingJobRequest
from mcp_server.core.spec.catalog import FAMILY_BY_ALGORITHM, METRICS_BY_TASK
from mcp_server.errors import MlopsError, NotFoundError, TrainingJobError, TransientError
from mcp_server.settings import Settings

#: SageMaker's limit on one hyperparameter value, in characters.
MAX_HYPERPARAMETER_CHARS = 2500
#: Where the container finds its checkpoints (synced with S3 on spot instances).
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
#: SageMaker's job states -> ours (Stopping is still running).
_STATUS = {
    "InProgress": "InProgress",
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopping": "InProgress",
    "Stopped": "Stopped",
}


class SageMakerTrainingBackend(TrainingBackend):
    """Runs training jobs on SageMaker."""

    def __init__(self, settings: Settings, sagemaker_client: Any = None) -> None:
        """Use ``sagemaker_client``, or build one for ``settings.aws_region`` / endpoint URL."""
        self._settings = settings
        self._client = sagemaker_client or aws_client(settings, "sagemaker")

    def start_training_job(self, request: TrainingJobRequest) -> TrainingJob:
        """Create the SageMaker training job; an existing job name returns that job unchanged.

        Args:
            request: the job; ``channels`` are ``s3://`` prefixes (``train`` required);
                ``compute`` gives the instance, volume (GB) and limits (seconds); with
                ``use_spot`` the wait limit defaults to twice the runtime limit.

        Returns:
            The job as ``describe_training_job`` reports it.

        Raises:
            TrainingJobError: unknown algorithm, no image for its family, no bucket or role
                configured, a channel that is not ``s3://``, a hyperparameter value over 2,500
                characters, or SageMaker refused the job.
            TransientError: SageMaker throttled or was unavailable; retry.
        """
        definition = training_job_definition(request, self._settings)
        try:
            return self.describe_training_job(request.job_name)
        except NotFoundError:
            pass
        try:
            self._client.create_training_job(**definition)
        except ClientError as err:
            if _code(err) != "ResourceInUse":  # created meanwhile by another caller: describe it
                raise _translate(err, f"cannot create training job {request.job_name}") from err
        except BotoCoreError as err:
            raise TransientError(f"cannot reach SageMaker to create {request.job_name}: {err}") from err
        return self.describe_training_job(request.job_name)

    def describe_training_job(self, job_name: str) -> TrainingJob:
        """Return the job's status, final metrics and model artifact (``model.tar.gz`` URI).

        Raises:
            NotFoundError: no job has that name.
            TransientError: SageMaker throttled or was unavailable; retry.
            TrainingJobError: any other SageMaker error.
        """
        try:
            described = self._client.describe_training_job(TrainingJobName=job_name)
        except ClientError as err:
            message = str(err.response.get("Error", {}).get("Message", ""))
            if _code(err) == "ResourceNotFound" or (
                _code(err) == "ValidationException"
                and ("could not find" in message.lower() or "not found" in message.lower())
            ):
                raise NotFoundError(f"no SageMaker training job named {job_name!r}: {message}") from err
            raise _translate(err, f"cannot describe training job {job_name}") from err
        except BotoCoreError as err:
            raise TransientError(f"cannot reach SageMaker to describe {job_name}: {err}") from err
        return to_training_job(described, self._settings.aws_region)


def training_job_definition(request: TrainingJobRequest, settings: Settings) -> dict[str, Any]:
    """Return the ``CreateTrainingJob`` arguments for a request.

    Raises:
        TrainingJobError: see ``SageMakerTrainingBackend.start_training_job``.
    """
    family = FAMILY_BY_ALGORITHM.get(request.algorithm)
    if family is None:
        raise TrainingJobError(
            f"no training program for algorithm {request.algorithm!r}; "
            f"available: {', '.join(sorted(FAMILY_BY_ALGORITHM))}"
        )
    image = settings.training_images.get(family)
    if not image:
        raise TrainingJobError(
            f"no training image for the {family} family; set "
            f"MLOPS_TRAINING_IMAGE_{family.upper()} to its ECR image URI"
        )
    if not settings.s3_bucket or not settings.sagemaker_role_arn:
        raise TrainingJobError("SageMaker jobs need MLOPS_BUCKET and MLOPS_SAGEMAKER_ROLE_ARN to be set")
    bucket, name, compute = settings.s3_bucket, request.job_name, request.compute
    definition: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(request.task),
        },
        "RoleArn": settings.sagemaker_role_arn,
        "HyperParameters": sagemaker_hyperparameters(request),
        "InputDataConfig": _input_channels(request.channels, request.task),
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/jobs/"},  # SageMaker adds {name}/output/
        "ResourceConfig": {
            "InstanceType": compute.instance_type,
            "InstanceCount": compute.instance_count,
            "VolumeSizeInGB": compute.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": compute.max_runtime_s},
        "EnableManagedSpotTraining": compute.use_spot,
        "Tags": [{"Key": key, "Value": value} for key, value in request.tags.items()],
    }
    if compute.use_spot:
        wait_s = max(compute.max_wait_s or 2 * compute.max_runtime_s, compute.max_runtime_s)
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"] = wait_s
        definition["CheckpointConfig"] = {
            "S3Uri": f"s3://{bucket}/jobs/{name}/checkpoints/",
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        }
    return definition


def sagemaker_hyperparameters(request: TrainingJobRequest) -> dict[str, str]:
    """Return the hyperparameters with the reserved keys, every value JSON-encoded to a string.

    ``_feature_types`` is left out when it is too long (a table of roughly 90 columns or more);
    the program then infers each column's type from its parquet dtype.

    Raises:
        TrainingJobError: a value is longer than SageMaker's 2,500 characters.
    """
    encoded = jobs.encode_hyperparameters(jobs.container_hyperparameters(request))
    if len(encoded["_feature_types"]) > MAX_HYPERPARAMETER_CHARS:
        del encoded["_feature_types"]  # wide tables: the program infers the types from the dtypes
    too_long = [key for key, value in encoded.items() if len(value) > MAX_HYPERPARAMETER_CHARS]
    if too_long:
        raise TrainingJobError(
            f"hyperparameters {too_long} exceed SageMaker's "
            f"{MAX_HYPERPARAMETER_CHARS} characters per value once JSON-encoded"
        )
    return encoded


def metric_definitions(task: str) -> list[dict[str, str]]:
    """Return one definition per split (train, validation) and metric of the task.

    Each captures the program's ``{split}_{metric}=value`` line, e.g. name ``validation_f1``,
    regex ``validation_f1=([-+0-9.eE]+)``. Control tasks also report their progress
    (``train_env_steps``, ``train_episodes``).
    """
    progress = ("env_steps", "episodes") if task == "control" else ()
    return [
        {"Name": f"{split}_{metric}", "Regex": f"{split}_{metric}=([-+0-9.eE]+)"}
        for split in ("train", "validation")
        for metric in (*METRICS_BY_TASK.get(task, ()), *progress)
    ]


def to_training_job(described: dict[str, Any], region: str) -> TrainingJob:
    """Map a ``DescribeTrainingJob`` response onto ``TrainingJob``."""
    hyperparameters = described.get("HyperParameters") or {}
    started, ended = described.get("TrainingStartTime"), described.get("TrainingEndTime")
    duration = described.get("TrainingTimeInSeconds")
    if duration is None and started and ended:
        duration = (ended - started).total_seconds()
    name = described["TrainingJobName"]
    return TrainingJob(
        job_name=name,
        status=_STATUS.get(described["TrainingJobStatus"], "InProgress"),
        secondary_status=described.get("SecondaryStatus", ""),
        failure_reason=described.get("FailureReason"),
        algorithm=_decode(hyperparameters.get("_algorithm", '"unknown"')),
        model_uri=(described.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        log_uri=f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FTrainingJobs"
        f"$3FlogStreamNameFilter$3D{name}",
        metrics={m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList") or []},
        started_at=_iso(started),
        ended_at=_iso(ended),
        duration_s=None if duration is None else float(duration),
    )


def _input_channels(channels: dict[str, str], task: str = "classification") -> list[dict[str, Any]]:
    if task == "control" and not channels:
        return []  # reinforcement learning trains in its environment: no data channels
    if "train" not in channels:
        raise TrainingJobError(f"the train channel is required; got channels {sorted(channels)}")
    bad = {name: uri for name, uri in channels.items() if not uri.startswith("s3://")}
    if bad:
        raise TrainingJobError(f"SageMaker channels must be s3:// prefixes, got {bad}")
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        for name, uri in channels.items()
    ]


def _code(err: ClientError) -> str:
    return error_code(err)


def _translate(err: ClientError, what: str) -> MlopsError:
    return aws_error(err, what, "SageMaker", TrainingJobError)


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
