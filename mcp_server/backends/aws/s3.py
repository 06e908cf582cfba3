"""Reading and writing S3 objects by ``s3://bucket/key`` URI, for the AWS backends."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Return ``(bucket, key)`` of ``s3://bucket/key``.

    Raises:
        ValueError: ``uri`` is not an ``s3://`` URI with a bucket.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri[:200]!r} is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def read_object(s3: Any, uri: str) -> bytes:
    """Return the bytes of the object at ``uri``.

    Raises:
        ValueError: ``uri`` is not an ``s3://`` URI.
        botocore.exceptions.ClientError: S3 refused (``NoSuchKey``, ``AccessDenied``, ...).
    """
    bucket, key = split_s3_uri(uri)
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def write_object(s3: Any, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    """Write ``data`` to the object at ``uri`` (the bucket's default encryption applies).

    Raises:
        ValueError: ``uri`` is not an ``s3://`` URI.
        botocore.exceptions.ClientError: S3 refused the write.
    """
    bucket, key = split_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def object_exists(s3: Any, uri: str) -> bool:
    """True when an object is at ``uri``.

    Raises:
        botocore.exceptions.ClientError: S3 refused for another reason than a missing key.
    """
    bucket, key = split_s3_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as err:
        if str(err.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def source_reader(s3: Any) -> Any:
    """Return ``read(uri) -> bytes`` for ``s3://`` URIs (through ``s3``) and local files.

    The history backend reads the plots a record links with it: on S3 in AWS mode.

    Raises (from the returned function):
        HistoryError: the object or file cannot be read.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from mcp_server.backends.github.history import read_local_source
    from mcp_server.errors import HistoryError

    def read(uri: str) -> bytes:
        if not uri.startswith("s3://"):
            return read_local_source(uri)
        try:
            return read_object(s3, uri)
        except (ClientError, BotoCoreError, ValueError) as err:
            raise HistoryError(f"cannot read {uri[:200]!r} to commit it: {err}") from err

    return read
