"""The webhook over HTTP for ``mlops serve``: ``POST /webhook`` into the real handler.

The request becomes the API Gateway proxy event the Lambda receives on AWS (headers and the raw
body, untouched, so the signature check sees the exact bytes GitHub signed). The handler
answers at once (202 once the delivery is stored); the runtime's worker does the work after.
A body over ``MAX_DELIVERY_BYTES`` is refused with 413 before it is read whole.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_server.core.events import MAX_DELIVERY_BYTES


def proxy_event(headers: dict[str, str], body: bytes, path: str = "/webhook") -> dict[str, Any]:
    """Build an API Gateway proxy event from an HTTP request's headers and raw body."""
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "body": text,
        "isBase64Encoded": encoded,
    }


def webhook_app(runtime: Any) -> Starlette:
    """Return the Starlette app serving ``POST /webhook`` and ``GET /healthz`` for ``runtime``.

    Args:
        runtime: a started ``LocalRuntime`` (its ``receive`` answers a proxy event).
    """

    async def webhook(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_DELIVERY_BYTES:
                return JSONResponse(
                    {"status": "too_large", "message": f"the body is over {MAX_DELIVERY_BYTES} bytes"},
                    status_code=413,
                )
        event = proxy_event(dict(request.headers), bytes(body))
        response = await run_in_threadpool(runtime.receive, event)
        return Response(response["body"], status_code=response["statusCode"], media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhook", webhook, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )
