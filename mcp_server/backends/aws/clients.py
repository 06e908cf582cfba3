"""What the AWS backends share: boto3 clients with standard retries, and AWS errors as ``MlopsError``s.

Clients use botocore's ``standard`` retry mode (up to 5 attempts, exponential backoff with
jitter, throttling and 5xx retried; botocore's "Retries" guide), so a throttled call is retried
before it ever reaches the workflow. What is still throttled after that becomes a
``TransientError``, which the ASL's ``Retry`` retries again later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mcp_server.errors import MlopsError, TransientError
from mcp_server.settings import Settings

#: Error codes that mean "try again later", across SageMaker, DynamoDB, SNS, S3 and KMS.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "Throttled",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "KMSThrottlingException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
    }
)
#: botocore's retry policy of every client (attempts include the first call).
RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


def aws_client(settings: Settings, service: str) -> Any:
    """Return a boto3 client of ``service`` for ``settings.aws_region`` and endpoint override."""
    return boto3.client(
        service, region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url, config=RETRIES
    )


def error_code(err: ClientError) -> str:
    """The ``Error.Code`` of an AWS error answer (``""`` when absent)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def error_message(err: ClientError) -> str:
    """The ``Error.Message`` of an AWS error answer (the exception's text when absent)."""
    return str(err.response.get("Error", {}).get("Message", "") or err)


def aws_error(
    err: ClientError | BotoCoreError, what: str, service: str, error: type[MlopsError]
) -> MlopsError:
    """Return the ``MlopsError`` of an AWS failure.

    Args:
        err: botocore's exception: an error answer, or a failure to reach the service.
        what: the operation, for the message (e.g. ``"publish to topic mlops-runs"``).
        service: the service's name, for the message (``"SNS"``).
        error: the class of refusals (``ValidationException``, ``AccessDenied``, ...).

    Returns:
        ``TransientError`` for throttling, 5xx and network failures; else ``error``, its
        message naming the code and AWS's own message (a missing permission says which).
    """
    if isinstance(err, BotoCoreError):
        return TransientError(f"{what}: cannot reach {service} ({err}); retry later")
    code, message = error_code(err), error_message(err)
    if code in TRANSIENT_CODES:
        return TransientError(
            f"{what}: {service} is throttling or unavailable ({code}: {message}); retry later"
        )
    return error(f"{what}: {service} refused it ({code}: {message})")


@contextlib.contextmanager
def translated(what: str, service: str, error: type[MlopsError]) -> Iterator[None]:
    """Turn botocore's exceptions raised inside the block into ``MlopsError``s (see ``aws_error``)."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise aws_error(err, what, service, error) from err
