"""SageMaker processing jobs: their definition, start, wait and failure reason.

The evaluation and the data preparation are each one program under the SageMaker Processing
contract. Both backends start their job here the same way: a job's name is its id, so a job
that exists is found instead of started twice (a Lambda that timed out while waiting is retried
by the workflow and picks the same job up); its configuration is written to
``{prefix}/input/config/`` first; its output folder ``/opt/ml/processing/output/`` is uploaded
when it ends to ``{prefix}/output/``, holding the program's result or its ``failure`` file.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from mcp_server.backends.aws.clients import error_code
from mcp_server.backends.aws.s3 import read_object, write_object
from mcp_server.errors import TransientError

ROOT = "/opt/ml/processing"
#: Seconds a processing job may spend getting its instance, on top of its own time limit.
PROVISIONING_S = 900
#: Seconds one call waits for a job before answering TransientError ("retry to wait on"): under
#: the agents' tool timeout (``MLOPS_TOOL_TIMEOUT_S``, 600) and the MCP server Lambda's 15
#: minutes, so a long job is waited on over retried calls, which find it by name.
WAIT_BUDGET_S = 540
#: Characters of a failure reason kept in messages (SageMaker's own FailureReason is at most 1,024).
REASON_MAX_CHARS = 2048


def processing_job_definition(
    name: str,
    image: str,
    role_arn: str,
    entrypoint: list[str],
    inputs: dict[str, str],
    output_uri: str,
    max_runtime_s: int,
    instance_type: str,
    tags: dict[str, str],
    volume_gb: int = 30,
) -> dict[str, Any]:
    """Return the ``CreateProcessingJob`` arguments of one program's job.

    Args:
        name: the job's name (at most 63 characters: letters, digits and ``-``).
        image: the program's image URI.
        role_arn: the role the job runs as.
        entrypoint: the container's entrypoint (``["python3", "-m", "module"]``).
        inputs: input name -> ``s3://`` URI (a prefix, or one object's key), mounted at
            ``/opt/ml/processing/input/<name>``.
        output_uri: where ``/opt/ml/processing/output`` is uploaded when the job ends.
        max_runtime_s: the job's time limit, seconds.
        instance_type: the processing instance (``ml.m5.xlarge``).
        tags: the job's tags.
        volume_gb: the instance's storage volume, GB (inputs, outputs and scratch space).

    Raises:
        ValueError: an input is not an ``s3://`` URI (the message names it).
    """
    processing_inputs = []
    for input_name, uri in inputs.items():
        if not uri.startswith("s3://"):
            raise ValueError(f"{input_name} input must be on S3, got {uri[:200]!r}")
        processing_inputs.append(
            {
                "InputName": input_name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"{ROOT}/input/{input_name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
        )
    return {
        "ProcessingJobName": name,
        "RoleArn": role_arn,
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": entrypoint},
        "ProcessingInputs": processing_inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": f"{ROOT}/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": volume_gb}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "Environment": {"MPLBACKEND": "Agg"},
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def start_processing_job(
    sagemaker: Any, s3: Any, definition: dict[str, Any], config_uri: str, config: dict[str, Any]
) -> None:
    """Write the job's configuration and create the job, unless a job of that name exists.

    Args:
        sagemaker: a boto3 SageMaker client.
        s3: a boto3 S3 client.
        definition: from ``processing_job_definition``.
        config_uri: ``s3://…/input/config/<file>.json``.
        config: the configuration's JSON content.

    Raises:
        botocore.exceptions.ClientError: SageMaker or S3 refused (``ValidationException``, ...).
    """
    name = definition["ProcessingJobName"]
    try:
        sagemaker.describe_processing_job(ProcessingJobName=name)
        return
    except ClientError as err:
        if error_code(err) not in ("ValidationException", "ResourceNotFound"):
            raise
    write_object(s3, config_uri, json.dumps(config, indent=2).encode(), "application/json")
    try:
        sagemaker.create_processing_job(**definition)
    except ClientError as err:
        if error_code(err) != "ResourceInUse":  # created meanwhile by a retried call
            raise


def wait_for_processing_job(
    sagemaker: Any,
    s3: Any,
    name: str,
    prefix: str,
    max_runtime_s: int,
    poll_s: float,
    budget_s: float = WAIT_BUDGET_S,
) -> str | None:
    """Poll the job until it ends.

    Args:
        sagemaker: a boto3 SageMaker client.
        s3: a boto3 S3 client (reads the program's failure file).
        name: the job's name.
        prefix: the job's ``s3://`` prefix (its output is ``{prefix}/output/``).
        max_runtime_s: the job's time limit, seconds; the wait adds ``PROVISIONING_S``.
        poll_s: seconds between two ``DescribeProcessingJob`` calls.
        budget_s: seconds this call waits at most (``WAIT_BUDGET_S``).

    Returns:
        None when the job completed; else why it failed or stopped (``failure_reason``).

    Raises:
        TransientError: the job has not ended within ``budget_s`` (or its time limit plus
            provisioning); retry to wait on: the retried call finds the job by its name.
        botocore.exceptions.ClientError: SageMaker refused.
    """
    deadline = time.monotonic() + min(max_runtime_s + PROVISIONING_S, budget_s)
    while True:
        job = sagemaker.describe_processing_job(ProcessingJobName=name)
        status = job["ProcessingJobStatus"]
        if status == "Completed":
            return None
        if status in ("Failed", "Stopped"):
            return failure_reason(s3, job, prefix)
        if time.monotonic() >= deadline:
            raise TransientError(
                f"processing job {name} is still {status}; retry to wait on (it is found by its name)"
            )
        time.sleep(poll_s)


def failure_reason(s3: Any, job: dict[str, Any], prefix: str) -> str:
    """The program's failure headline (``Type: message``) when it wrote one, else SageMaker's reason.

    Args:
        s3: a boto3 S3 client.
        job: the ``DescribeProcessingJob`` answer (or a dict with ``ProcessingJobStatus`` and
            ``ExitMessage``).
        prefix: the job's ``s3://`` prefix.

    Returns:
        At most ``REASON_MAX_CHARS`` characters.
    """
    try:
        text = read_object(s3, f"{prefix}/output/failure").decode("utf-8", errors="replace").strip()
    except ClientError:
        text = ""
    if text:
        reason = text.split("\n\n", 1)[0]
    else:
        reason = str(
            job.get("FailureReason")
            or job.get("ExitMessage")
            or f"the job ended {job['ProcessingJobStatus']}"
        )
    return reason[:REASON_MAX_CHARS]


def log_link(region: str, job_name: str) -> str:
    """The CloudWatch console page of the processing job's log streams."""
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/"
        f"$252Faws$252Fsagemaker$252FProcessingJobs$3FlogStreamNameFilter$3D{job_name}"
    )
