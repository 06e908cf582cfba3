"""One MCP client session per process and server, kept open across tool calls.

Opening a session costs more than most tool calls: the protocol handshake, a ``tools/list``
whose answer carries every tool's schemas, and the compilation of each output schema the
client validates results against (the SDK caches those per session). An agent process keeps
one session per server URL instead, on one event loop in a daemon thread, and every tool call
of every thread in the process goes through it; the SDK multiplexes concurrent requests on
one session by JSON-RPC id. A warm Lambda container keeps its session between invocations in
the same way. With ``MLOPS_MCP_AUTH=aws_iam`` every request is signed with SigV4
(``agents.sigv4``), as the MCP server's Lambda function URL requires.

A session whose transport fails is dropped: the call that saw the failure raises
``ConnectionError`` (the caller maps it to ``TransientError``, which the ASL retries) and the
next call opens a new session.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
from concurrent.futures import Future
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import CONNECTION_CLOSED

#: The MCP SDK's default HTTP timeouts (seconds): 30 to connect or write, 300 to read a response.
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process (building one costs about 50 ms of CPU)."""
    return httpx2.create_ssl_context()


class McpSession:
    """One open MCP client session to one server, held by a task on the shared event loop.

    Args:
        url: the server's streamable HTTP URL.
        read_timeout_s: seconds to wait for one tool result.
        loop: the event loop that owns the session (see ``_event_loop``).
    """

    def __init__(self, url: str, read_timeout_s: float, loop: asyncio.AbstractEventLoop) -> None:
        """Prepare; the session opens at the first ``call_tool``."""
        self.url = url
        self.read_timeout_s = read_timeout_s
        self._loop = loop
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._opened: asyncio.Future[None] | None = None
        self._closing: asyncio.Event | None = None

    @property
    def alive(self) -> bool:
        """Whether the session is open or opening (its holder task has not ended)."""
        return self._holder is None or not self._holder.done()

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call one tool from any thread and wait for its ``CallToolResult``.

        Raises:
            ConnectionError: the session could not be opened, or its transport failed during
                the call; the session is of no further use (``drop`` it).
            Exception: what the SDK raises for a call it refused.
        """
        future: Future[Any] = asyncio.run_coroutine_threadsafe(self._call(name, arguments), self._loop)
        return future.result()

    def close(self, timeout_s: float = 5.0) -> None:
        """Close the session (the holder leaves the client's context in its own task)."""
        if self._loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        try:
            future.result(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - a session that cannot close cleanly is dropped anyway
            future.cancel()

    async def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        client = await self._open()
        call = asyncio.ensure_future(client.call_tool(name, arguments))
        assert self._holder is not None
        done, _ = await asyncio.wait({call, self._holder}, return_when=asyncio.FIRST_COMPLETED)
        if call in done:
            try:
                return call.result()
            except MCPError as err:
                if err.code != CONNECTION_CLOSED:
                    raise
                await asyncio.wait({self._holder}, timeout=1.0)  # for the transport's own reason
                raise ConnectionError(f"MCP session to {self.url} closed: {self._failure()}") from err
        call.cancel()
        raise ConnectionError(f"MCP session to {self.url} ended: {self._failure()}")

    async def _open(self) -> Client:
        if self._holder is None:
            self._opened = self._loop.create_future()
            self._closing = asyncio.Event()
            self._holder = asyncio.ensure_future(self._hold())
        assert self._opened is not None
        await asyncio.wait({self._opened, self._holder}, return_when=asyncio.FIRST_COMPLETED)
        if self._client is None or self._holder.done():
            raise ConnectionError(f"MCP session to {self.url} could not be opened: {self._failure()}")
        return self._client

    async def _hold(self) -> None:
        """Enter the HTTP client and the MCP client, and stay in them until ``_close``.

        anyio's task groups must be left by the task that entered them, so one task holds them.
        """
        assert self._opened is not None
        assert self._closing is not None
        try:
            async with httpx2.AsyncClient(
                verify=_ssl_context(), timeout=HTTP_TIMEOUT, auth=request_auth()
            ) as http:
                transport = streamable_http_client(self.url, http_client=http)
                async with Client(transport, read_timeout_seconds=self.read_timeout_s) as client:
                    self._client = client
                    self._opened.set_result(None)
                    await self._closing.wait()
        finally:
            self._client = None

    async def _close(self) -> None:
        if self._holder is None or self._closing is None:
            return
        self._closing.set()
        await asyncio.wait({self._holder})

    def _failure(self) -> str:
        if self._holder is None or not self._holder.done() or self._holder.cancelled():
            return "closed"
        error = self._holder.exception()
        return "closed" if error is None else _describe(error)


def request_auth() -> httpx2.Auth | None:
    """The auth of MCP requests: SigV4 when ``MLOPS_MCP_AUTH=aws_iam`` (a function URL), else none.

    Raises:
        ValueError: ``MLOPS_MCP_AUTH`` has another value.
    """
    mode = os.environ.get("MLOPS_MCP_AUTH", "none")
    if mode == "aws_iam":
        from agents.sigv4 import AwsSigV4

        return AwsSigV4()
    if mode != "none":
        raise ValueError(f"MLOPS_MCP_AUTH={mode!r}: expected 'none' or 'aws_iam'")
    return None


def _describe(error: BaseException) -> str:
    """The innermost messages of an exception (group), for a one-line reason."""
    inner = getattr(error, "exceptions", None)
    if inner:
        return "; ".join(_describe(e) for e in inner)
    return f"{type(error).__name__}: {error}"


def transport_failure(error: BaseException) -> bool:
    """Whether ``error`` (or any exception in its group) is a failure to reach the server."""
    if isinstance(error, httpx2.TransportError | ConnectionError | OSError):
        return True
    return any(transport_failure(e) for e in getattr(error, "exceptions", ()))


_lock = threading.Lock()
_sessions: dict[str, McpSession] = {}


@functools.cache
def _event_loop() -> asyncio.AbstractEventLoop:
    """The process's MCP client event loop, running in a daemon thread."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="mcp-client", daemon=True).start()
    return loop


def _forget_after_fork() -> None:
    """A forked child has no event-loop thread: it starts its own loop and sessions if it calls."""
    global _lock
    _lock = threading.Lock()
    _sessions.clear()
    _event_loop.cache_clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def session_for(url: str, read_timeout_s: float) -> McpSession:
    """The process's open session to ``url``, opened anew if there is none or it ended.

    Args:
        url: the server's streamable HTTP URL.
        read_timeout_s: seconds to wait for one tool result (used when a session is opened).
    """
    with _lock:
        session = _sessions.get(url)
        if session is None or not session.alive:
            session = McpSession(url, read_timeout_s, _event_loop())
            _sessions[url] = session
        return session


def drop(session: McpSession) -> None:
    """Forget ``session`` (after its transport failed) and close it; the next call opens another."""
    with _lock:
        if _sessions.get(session.url) is session:
            del _sessions[session.url]
    session.close()


def close_sessions(url: str | None = None) -> None:
    """Close the open sessions to ``url`` (every server when None).

    A local runtime calls this before it stops its MCP server; sessions to other servers in the
    same process stay open.
    """
    with _lock:
        closing = [session for key, session in _sessions.items() if url is None or key == url]
        for session in closing:
            del _sessions[session.url]
    for session in closing:
        session.close()
