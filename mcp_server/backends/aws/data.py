"""Dataset preparation on AWS: the preparation program as a SageMaker processing job.

Sources: ``sklearn://NAME`` (loaded by the program) and ``s3://bucket/key.csv`` (optionally
compressed) or ``.parquet``, which the job's role must be able to read (the stack's bucket under
``data/``, or a bucket granted to it). The same spec on the same data gives the same
``data_version``, ``dataset_id`` and splits as locally: both backends run
``training_containers/preparation`` (``core.jobs.preparation``). Layout, as ARCHITECTURE §4 and
the local backend::

    s3://{bucket}/preparations/{preparation_id}/input/config/preparation.json
    s3://{bucket}/preparations/{preparation_id}/output/...      what the job uploaded
    s3://{bucket}/preparations/{preparation_id}/published.json  where it was published
    s3://{bucket}/datasets/{dataset_id}/raw/data.parquet
    s3://{bucket}/datasets/{dataset_id}/processed/{split_key}/{train,validation,test}/data.parquet
    s3://{bucket}/datasets/{dataset_id}/processed/{split_key}/metadata.json   (written last)

The job's name is the preparation id, over the object's ETag, size and version, so an unchanged
object with the same spec is not prepared again, and a retried call (a Lambda that timed out
while waiting) finds the job it started. ``metadata.json`` is the commit point: a publication
that stopped half-way is redone. The data never passes through the MCP server: the job reads it
on an instance sized for it (``ml.m5.xlarge``, its volume from the object's size).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mcp_server.backends.aws.clients import aws_client, error_code, translated
from mcp_server.backends.aws.processing import (
    WAIT_BUDGET_S,
    failure_reason,
    log_link,
    processing_job_definition,
    start_processing_job,
    wait_for_processing_job,
)
from mcp_server.backends.aws.s3 import object_exists, read_object, split_s3_uri, write_object
from mcp_server.backends.base import DatasetBackend
from mcp_server.backends.environments import environment_ref
from mcp_server.core.jobs import preparation
from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.bounds import preview
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.errors import DatasetError
from mcp_server.settings import Settings

#: The image family of the preparation program (``MLOPS_TRAINING_IMAGE_PREPARATION``).
IMAGE_FAMILY = "preparation"
ENTRYPOINT = ["python3", "-m", preparation.PROGRAM]


class S3DatasetBackend(DatasetBackend):
    """Prepares datasets in SageMaker processing jobs into ``s3://{settings.s3_bucket}/datasets/``.

    Args:
        settings: ``s3_bucket``, ``sagemaker_role_arn``, ``training_images["preparation"]``,
            ``aws_region`` and ``aws_endpoint_url``.
        s3_client: a boto3 S3 client to use instead of building one.
        sagemaker_client: a boto3 SageMaker client to use instead of building one.
        poll_s: seconds between two looks at the job.
        wait_budget_s: seconds one call waits for the job before answering TransientError (the
            workflow's retry waits on; ``processing.WAIT_BUDGET_S``).
        instance_type: the processing instance (``ml.m5.xlarge``: 4 vCPUs, 16 GiB).
        memory_limit_mb: DuckDB's memory limit on that instance, MiB (half of it).

    Raises:
        DatasetError: no bucket is configured (``MLOPS_BUCKET``).
    """

    def __init__(
        self,
        settings: Settings,
        s3_client: Any = None,
        sagemaker_client: Any = None,
        poll_s: float = 10.0,
        wait_budget_s: float = WAIT_BUDGET_S,
        instance_type: str = "ml.m5.xlarge",
        memory_limit_mb: int = 8192,
    ) -> None:
        if not settings.s3_bucket:
            raise DatasetError("AWS mode keeps datasets on S3: set MLOPS_BUCKET to the stack's bucket")
        self._settings = settings
        self._bucket = settings.s3_bucket
        self._s3 = s3_client or aws_client(settings, "s3")
        self._sagemaker = sagemaker_client or aws_client(settings, "sagemaker")
        self._poll_s = poll_s
        self._wait_budget_s = wait_budget_s
        self._instance_type = instance_type
        self._memory_limit_mb = memory_limit_mb

    def prepare_dataset(self, spec: TrainingSpec, feedback_uri: str | None = None) -> DatasetRef:
        """Run the preparation job for ``spec.dataset`` (or find its result); publish the splits.

        Idempotent: an unchanged object with the same spec (and feedback) returns the published
        DatasetRef without starting a job. ``feedback_uri``, a monitoring job's
        ``feedback.parquet`` under the bucket's ``monitoring/`` prefix, is mounted as the
        ``feedback`` input and appended to the source's rows (``retraining.feedback``).

        Returns:
            The DatasetRef; ``uri`` and ``splits`` are ``s3://`` prefixes (each split's ends with
            ``/`` and holds ``data.parquet``).

        Raises:
            DatasetError: no dataset section; an unknown, unreadable or unsupported source; no
                image or role configured; data the spec cannot use (the program's message as it
                is: a missing target column, too few rows, ...); a job that failed for another
                reason (its failure file, else SageMaker's FailureReason, and the log's page);
                or SageMaker or S3 refused a call (the code and AWS's message).
            TransientError: SageMaker or S3 throttled or was unreachable, or the job has not
                ended within its time limit; retry to wait on.
        """
        if spec.task == "control" and spec.environment is not None:
            return environment_ref(spec.environment)
        ds = spec.dataset
        if ds is None:
            raise DatasetError(f"the {spec.task} spec has no dataset section; add dataset.source")
        with translated(f"prepare {preview(ds.source)}", "SageMaker", DatasetError):
            source_uri, fingerprint, size = self._source(ds.source)
            if feedback_uri:
                fingerprint += f"|feedback:{self._feedback_tag(feedback_uri)}"
            job_id = preparation.preparation_id(fingerprint, spec)
            prefix = f"s3://{self._bucket}/preparations/{job_id}"
            published = self._published(prefix)
            if published is not None:
                return published
            if not object_exists(self._s3, f"{prefix}/output/{preparation.RESULT_FILE}"):
                self._run(spec, job_id, prefix, source_uri, size, feedback_uri)
            result = json.loads(read_object(self._s3, f"{prefix}/output/{preparation.RESULT_FILE}"))
            ref, metadata = self._publish(spec, prefix, result)
            write_object(
                self._s3,
                f"{prefix}/published.json",
                json.dumps({"metadata": metadata}).encode(),
                "application/json",
            )
            return ref

    def _source(self, source: str) -> tuple[str | None, str, int]:
        """The object to mount (None for scikit-learn's datasets), its fingerprint and size in bytes.

        Raises:
            DatasetError: an unknown scheme or scikit-learn dataset, a URI that is not
                ``s3://bucket/key``, a type that is not CSV or Parquet, or an object that does
                not exist or may not be read.
        """
        if source.startswith("sklearn://"):
            preparation.check_sklearn_name(source.removeprefix("sklearn://"))
            return None, source, 0
        if not source.startswith("s3://"):
            raise DatasetError(
                f"dataset.source {preview(source)}: AWS mode reads sklearn://NAME and s3://BUCKET/KEY "
                "(csv or parquet); upload the file to S3 and use its s3:// URI"
            )
        try:
            bucket, key = split_s3_uri(source)
        except ValueError as err:
            raise DatasetError(f"dataset.source {preview(source)}: {err}") from err
        if not key or key.endswith("/"):
            raise DatasetError(f"dataset.source {preview(source)}: name one object (a .csv or .parquet key)")
        preparation.check_file_kind(source, key.rsplit("/", 1)[-1])
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "404", "NotFound", "NoSuchBucket", "AccessDenied", "403"):
                raise DatasetError(
                    f"dataset.source {preview(source)}: cannot read it ({error_code(err)}); check the URI "
                    "and that the stack's roles may read it: upload the file under the stack "
                    f"bucket's data/ prefix (s3://{self._bucket}/data/...)"
                ) from err
            raise
        size = int(head.get("ContentLength") or 0)
        return source, f"{source}|{head.get('ETag')}|{size}|{head.get('VersionId')}", size

    def _published(self, prefix: str) -> DatasetRef | None:
        """The DatasetRef this preparation published, when its metadata is still there."""
        pointer = f"{prefix}/published.json"
        if not object_exists(self._s3, pointer):
            return None
        metadata = json.loads(read_object(self._s3, pointer))["metadata"]
        if not object_exists(self._s3, metadata):
            return None  # the dataset was deleted: publish again
        return DatasetRef.model_validate_json(read_object(self._s3, metadata))

    def _feedback_tag(self, uri: str) -> str:
        """The feedback object's ETag, once it is known to be a monitoring job's Parquet output.

        Raises:
            DatasetError: not ``s3://{bucket}/monitoring/.../*.parquet``, or an object that
                does not exist.
        """
        if (
            not uri.startswith(f"s3://{self._bucket}/monitoring/")
            or not uri.endswith(".parquet")
            or ".." in uri
        ):
            raise DatasetError(
                f"feedback {preview(uri)}: not a monitoring job's feedback.parquet under "
                f"s3://{self._bucket}/monitoring/"
            )
        bucket, key = split_s3_uri(uri)
        try:
            return str(self._s3.head_object(Bucket=bucket, Key=key).get("ETag"))
        except ClientError as err:
            raise DatasetError(f"feedback {preview(uri)}: cannot read it ({error_code(err)})") from err

    def _run(
        self,
        spec: TrainingSpec,
        job_id: str,
        prefix: str,
        source_uri: str | None,
        size: int,
        feedback_uri: str | None = None,
    ) -> None:
        """Start the job (or find it), wait for its end, and raise its failure."""
        image = self._settings.training_images.get(IMAGE_FAMILY)
        if not image or not self._settings.sagemaker_role_arn:
            raise DatasetError(
                "AWS mode prepares data in a SageMaker processing job: set MLOPS_TRAINING_IMAGE_PREPARATION "
                "to the preparation image and MLOPS_SAGEMAKER_ROLE_ARN to the stack's SageMaker role"
            )
        file_name = source_uri.rsplit("/", 1)[-1] if source_uri else None
        inputs = {"config": f"{prefix}/input/config/"}
        if source_uri:
            inputs["data"] = source_uri  # the object lands as input/data/<its name>
        feedback_file = feedback_uri.rsplit("/", 1)[-1] if feedback_uri else None
        if feedback_uri:
            inputs["feedback"] = feedback_uri  # input/feedback/feedback.parquet
        definition = processing_job_definition(
            job_id,
            image,
            self._settings.sagemaker_role_arn,
            ENTRYPOINT,
            inputs,
            f"{prefix}/output",
            preparation.MAX_RUNTIME_S,
            self._instance_type,
            {"preparation": job_id},
            volume_gb=preparation.volume_size_gb(size, file_name),
        )
        config = preparation.program_config(spec, job_id, file_name, self._memory_limit_mb, feedback_file)
        config_uri = f"{prefix}/input/config/{preparation.CONFIG_FILE}"
        start_processing_job(self._sagemaker, self._s3, definition, config_uri, config)
        reason = wait_for_processing_job(
            self._sagemaker,
            self._s3,
            job_id,
            prefix,
            preparation.MAX_RUNTIME_S,
            self._poll_s,
            self._wait_budget_s,
        )
        if reason is None and not object_exists(self._s3, f"{prefix}/output/{preparation.RESULT_FILE}"):
            job = {"ProcessingJobStatus": "Completed", "ExitMessage": "the job wrote no dataset.json"}
            reason = failure_reason(self._s3, job, prefix)
        if reason is not None:
            log = log_link(self._settings.aws_region, job_id)
            raise DatasetError(preparation.failure_message(job_id, reason, log))

    def _publish(self, spec: TrainingSpec, prefix: str, result: dict[str, Any]) -> tuple[DatasetRef, str]:
        """Copy the job's raw data and splits under ``datasets/``, ``metadata.json`` last.

        Returns:
            The DatasetRef and the URI of its ``metadata.json``.
        """
        root = f"s3://{self._bucket}/datasets/{preparation.dataset_id(spec, result)}"
        if not object_exists(self._s3, f"{root}/raw/data.parquet"):
            self._copy(f"{prefix}/output/raw/data.parquet", f"{root}/raw/data.parquet")
        final = f"{root}/processed/{preparation.split_key(spec)}"
        metadata = f"{final}/metadata.json"
        if object_exists(self._s3, metadata):
            return DatasetRef.model_validate_json(read_object(self._s3, metadata)), metadata
        splits = {}
        for name in preparation.SPLITS:
            if name in result.get("split_sizes", {}):
                self._copy(f"{prefix}/output/{name}/data.parquet", f"{final}/{name}/data.parquet")
                splits[name] = f"{final}/{name}/"
        ref = preparation.dataset_ref(spec, result, f"{root}/", splits)
        write_object(self._s3, metadata, ref.model_dump_json(indent=2).encode(), "application/json")
        return ref, metadata

    def _copy(self, source: str, target: str) -> None:
        """Copy one object inside S3 (multipart for large objects: boto3's managed copy)."""
        source_bucket, source_key = split_s3_uri(source)
        bucket, key = split_s3_uri(target)
        self._s3.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)
