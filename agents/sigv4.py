"""SigV4 signing of the agents' MCP requests, for the MCP server's function URL (``AWS_IAM`` auth).

A Lambda function URL with IAM auth accepts a request signed with Signature Version 4 for the
service ``lambda`` in the function's region. The signature comes from botocore's own signer
(``botocore.auth.SigV4Auth``) over the request the MCP SDK's HTTP client is about to send:
method, URL, body and the headers that do not change on the way (``host``, ``content-type``);
the credentials are the Lambda's role's, from botocore's usual chain (refreshed as they
expire). ``MLOPS_MCP_AUTH=aws_iam`` turns it on (``agents.mcp_client``).
"""

from __future__ import annotations

import os
from collections.abc import Generator

import botocore.session
import httpx2
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

#: The headers signed besides botocore's own (``x-amz-date``, ``x-amz-security-token``).
SIGNED_HEADERS = ("host", "content-type")


class AwsSigV4(httpx2.Auth):
    """An ``httpx2`` auth flow that signs each request with SigV4.

    Args:
        region: the function's region (default ``AWS_REGION``).
        service: the signing name (``lambda`` for function URLs).
        credentials: fixed credentials (tests); default botocore's credential chain.

    Raises:
        RuntimeError: on the first request, when no AWS credentials can be found.
    """

    requires_request_body = True

    def __init__(
        self, region: str | None = None, service: str = "lambda", credentials: Credentials | None = None
    ) -> None:
        self.region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        self.service = service
        self._credentials = credentials

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        """Add ``Authorization``, ``X-Amz-Date`` (and ``X-Amz-Security-Token``) to ``request``."""
        headers = {name: request.headers[name] for name in SIGNED_HEADERS if name in request.headers}
        headers.setdefault("host", request.url.netloc.decode("ascii"))
        signed = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        SigV4Auth(self._frozen(), self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request

    def _frozen(self) -> Credentials:
        credentials = self._credentials or botocore.session.get_session().get_credentials()
        if credentials is None:
            raise RuntimeError(
                "MLOPS_MCP_AUTH=aws_iam needs AWS credentials (the Lambda's role, or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY) to sign requests to the MCP server"
            )
        return credentials.get_frozen_credentials()  # type: ignore[no-any-return]
