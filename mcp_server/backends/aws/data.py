"""Dataset preparation on S3: the local backend's preparation, with the artifacts in the bucket.

Sources: ``sklearn://NAME`` and ``s3://bucket/key.csv`` (or ``.parquet``, optionally compressed
CSV); what the MCP server's role may read decides which buckets (IAM is the confinement here,
as ``MLOPS_DATA_ROOTS`` is locally). The same spec on the same data gives the same
``data_version``, ``dataset_id`` and splits as locally (``local.data.build_splits``). Layout, as
ARCHITECTURE §4 and the local backend::

    s3://{bucket}/datasets/{dataset_id}/raw/data.parquet
    s3://{bucket}/datasets/{dataset_id}/processed/{split_key}/{train,validation,test}/data.parquet
    s3://{bucket}/datasets/{dataset_id}/processed/{split_key}/metadata.json   (written last)

``metadata.json`` is the commit point: a preparation that stopped half-way is redone, one whose
metadata exists is returned as it is. The data is read into the server's memory, so a file must
fit it; larger data needs preparation as a processing job (not built yet).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from mcp_server.backends.aws.clients import aws_client, error_code, translated
from mcp_server.backends.aws.s3 import object_exists, read_object, split_s3_uri, write_object
from mcp_server.backends.base import DatasetBackend
from mcp_server.backends.environments import environment_ref
from mcp_server.backends.local.data import (
    build_splits,
    check_loaded,
    compute_data_version,
    load_sklearn,
    split_key,
)
from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.bounds import preview
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.errors import DatasetError
from mcp_server.settings import Settings


class S3DatasetBackend(DatasetBackend):
    """Prepares datasets into ``s3://{settings.s3_bucket}/datasets/``.

    Args:
        settings: ``s3_bucket``, ``aws_region`` and ``aws_endpoint_url``.
        s3_client: a boto3 S3 client to use instead of building one.

    Raises:
        DatasetError: no bucket is configured (``MLOPS_BUCKET``).
    """

    def __init__(self, settings: Settings, s3_client: Any = None) -> None:
        if not settings.s3_bucket:
            raise DatasetError("AWS mode keeps datasets on S3: set MLOPS_BUCKET to the stack's bucket")
        self._bucket = settings.s3_bucket
        self._s3 = s3_client or aws_client(settings, "s3")

    def prepare_dataset(self, spec: TrainingSpec) -> DatasetRef:
        """Load, version, clean and split ``spec.dataset``; store raw data and splits on S3.

        Idempotent: the same data and spec return the stored DatasetRef without rewriting.

        Returns:
            The DatasetRef; ``uri`` and ``splits`` are ``s3://`` prefixes (each split's ends with
            ``/`` and holds ``data.parquet``).

        Raises:
            DatasetError: no dataset section; an unknown, unreadable or unsupported source; a
                missing target column; too few rows or class members for the split; or S3
                refused a read or a write (the code and AWS's message).
            TransientError: S3 throttled or was unreachable.
        """
        if spec.task == "control" and spec.environment is not None:
            return environment_ref(spec.environment)
        ds = spec.dataset
        if ds is None:
            raise DatasetError(f"the {spec.task} spec has no dataset section; add dataset.source")
        with translated(f"prepare {preview(ds.source)}", "S3", DatasetError):
            raw, label_names = self._load(ds.source)
            target = check_loaded(raw, ds, spec.task)
            data_version = compute_data_version(raw)
            dataset_id = f"{ds.name or 'dataset'}-{data_version}"
            root = f"s3://{self._bucket}/datasets/{dataset_id}"
            final = f"{root}/processed/{split_key(spec)}"
            if object_exists(self._s3, f"{final}/metadata.json"):
                return DatasetRef.model_validate_json(read_object(self._s3, f"{final}/metadata.json"))
            if not object_exists(self._s3, f"{root}/raw/data.parquet"):
                write_object(self._s3, f"{root}/raw/data.parquet", _parquet(raw))
            identity = {
                "dataset_id": dataset_id,
                "name": ds.name or "dataset",
                "source": ds.source,
                "data_version": data_version,
                "uri": f"{root}/",
                "task": spec.task,
                "target": target,
                "rows_raw": len(raw),
            }
            parts, ref = build_splits(raw, spec, identity, label_names)
            splits = {}
            for name, part in parts.items():
                write_object(self._s3, f"{final}/{name}/data.parquet", _parquet(part))
                splits[name] = f"{final}/{name}/"
            ref = ref.model_copy(update={"splits": splits})
            write_object(
                self._s3, f"{final}/metadata.json", ref.model_dump_json(indent=2).encode(), "application/json"
            )
            return ref

    def _load(self, source: str) -> tuple[pd.DataFrame, list[str] | None]:
        if source.startswith("sklearn://"):
            return load_sklearn(source.removeprefix("sklearn://"))
        if source.startswith("s3://"):
            return self._read_s3(source), None
        raise DatasetError(
            f"dataset.source {preview(source)}: AWS mode reads sklearn://NAME and s3://BUCKET/KEY "
            "(csv or parquet); upload the file to S3 and use its s3:// URI"
        )

    def _read_s3(self, source: str) -> pd.DataFrame:
        """Read a CSV (optionally compressed) or Parquet object.

        Raises:
            DatasetError: not an ``s3://bucket/key`` URI, an unsupported extension, an object
                that does not exist or cannot be read, or a file that cannot be parsed.
        """
        try:
            _, key = split_s3_uri(source)
        except ValueError as err:
            raise DatasetError(f"dataset.source {preview(source)}: {err}") from err
        name = key.lower()
        kind = "Parquet" if name.endswith((".parquet", ".pq")) else "CSV" if ".csv" in name else None
        if kind is None:
            raise DatasetError(
                f"dataset.source {preview(source)}: unsupported file type; use .csv or .parquet"
            )
        try:
            data = read_object(self._s3, source)
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "404", "NoSuchBucket", "AccessDenied", "403"):
                raise DatasetError(
                    f"dataset.source {preview(source)}: cannot read it ({error_code(err)}); check the URI "
                    "and that the stack's MCP server role may read that bucket"
                ) from err
            raise
        try:
            if kind == "Parquet":
                return pd.read_parquet(io.BytesIO(data))
            return pd.read_csv(io.BytesIO(data), compression=_compression(name))
        except Exception as err:  # pandas and pyarrow raise many unrelated classes for a bad file
            raise DatasetError(
                f"dataset.source {preview(source)}: cannot parse it ({err}); "
                f"check that it is a valid {kind} file"
            ) from err


def _compression(name: str) -> str | None:
    """The compression of a CSV object for pandas, from its suffix (``.gz``, ``.bz2``, ``.zip``, ...)."""
    for suffix, kind in ((".gz", "gzip"), (".bz2", "bz2"), (".zip", "zip"), (".xz", "xz"), (".zst", "zstd")):
        if name.endswith(suffix):
            return kind
    return None


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
