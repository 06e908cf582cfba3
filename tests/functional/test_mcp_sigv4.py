"""The agents' MCP requests signed with SigV4, checked by a server that verifies them as AWS would.

The real MCP server runs behind an ASGI middleware that recomputes each request's SigV4
signature with botocore (the same canonical request, string to sign and key derivation as
Lambda's function URLs) from the signed headers it received, and answers 403 when it differs,
as a function URL with ``AWS_IAM`` auth does. The agents' client (``agents.mcp_client``) calls a
tool through it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from agents import mcp_client
from agents.sigv4 import AwsSigV4
from mcp_server.server import build_server, free_port
from mcp_server.settings import Settings

KEY_ID, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


class VerifySigV4:
    """ASGI middleware: 403 unless the request carries a valid SigV4 signature for ``lambda``."""

    def __init__(self, app: Any, region: str = "eu-west-1") -> None:
        self.app, self.region = app, region
        self.verified: list[str] = []
        self.refused: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        reason = self.check(scope, headers, body)
        if reason:
            self.refused.append(reason)
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"Message":"Forbidden"}'})
            return
        self.verified.append(scope["method"])
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def check(self, scope: dict[str, Any], headers: dict[str, str], body: bytes) -> str:
        found = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if found is None:
            return "no SigV4 Authorization header"
        if (found["key"], found["region"], found["service"]) != (KEY_ID, self.region, "lambda"):
            return f"wrong scope {found['key']}/{found['region']}/{found['service']}"
        if headers.get("x-amz-security-token") != TOKEN:
            return "no session token"
        signed = found["signed"].split(";")
        query = scope.get("query_string", b"").decode()
        url = f"http://{headers['host']}{scope['path']}" + (f"?{query}" if query else "")
        request = AWSRequest(
            method=scope["method"], url=url, data=body, headers={name: headers[name] for name in signed}
        )
        request.context["timestamp"] = headers["x-amz-date"]
        signer = SigV4Auth(Credentials(KEY_ID, SECRET, TOKEN).get_frozen_credentials(), "lambda", self.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        return "" if expected == found["signature"] else "signature mismatch"


@pytest.fixture
def signed_server(tmp_path: Path) -> Iterator[tuple[str, VerifySigV4]]:
    settings = Settings(home=tmp_path, allow_write=False)
    server = build_server(settings)
    verifier = VerifySigV4(server.streamable_http_app(host="127.0.0.1"))
    port = free_port()
    uv = uvicorn.Server(
        uvicorn.Config(verifier, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/mcp", verifier
    uv.should_exit = True
    thread.join(timeout=5)


def test_the_agents_signed_mcp_calls_pass_a_sigv4_check(
    signed_server: tuple[str, VerifySigV4], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, verifier = signed_server
    monkeypatch.setenv("MLOPS_MCP_AUTH", "aws_iam")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)

    session = mcp_client.session_for(url, 30.0)
    try:
        result = session.call_tool("list_waiting_runs", {})
    finally:
        mcp_client.drop(session)

    assert result.is_error is False
    assert verifier.refused == []
    assert verifier.verified.count("POST") >= 2  # initialize, then the tool call, each signed


def test_unsigned_or_tampered_requests_are_refused(signed_server: tuple[str, VerifySigV4]) -> None:
    url, verifier = signed_server
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

    assert httpx2.post(url, content=body, headers=headers).status_code == 403
    auth = AwsSigV4(region="eu-west-1", credentials=Credentials(KEY_ID, SECRET, TOKEN))
    signed = httpx2.Request("POST", url, content=body, headers=headers)
    signed = next(auth.auth_flow(signed))
    tampered = httpx2.Request(
        "POST", url, content=body.replace(b"ping", b"pong"), headers=dict(signed.headers)
    )
    assert httpx2.Client().send(tampered).status_code == 403
    wrong_key = next(
        AwsSigV4(region="eu-west-1", credentials=Credentials(KEY_ID, "not-the-secret", TOKEN)).auth_flow(
            httpx2.Request("POST", url, content=body, headers=headers)
        )
    )
    assert httpx2.Client().send(wrong_key).status_code == 403
    assert verifier.refused[0] == "no SigV4 Authorization header"
    assert verifier.refused[1:] == ["signature mismatch", "signature mismatch"]
    assert httpx2.Client().send(signed).status_code != 403


def test_an_unknown_auth_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_MCP_AUTH", "basic")
    with pytest.raises(ValueError, match="expected 'none' or 'aws_iam'"):
        mcp_client.request_auth()
    monkeypatch.delenv("MLOPS_MCP_AUTH")
    assert mcp_client.request_auth() is None
