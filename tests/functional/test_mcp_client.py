"""The agents' MCP client: one session per process and server, over a real HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import uvicorn
from mcp.server import MCPServer

from agents import mcp_client
from agents import runtime as agent_runtime
from mcp_server.errors import TransientError
from mcp_server.server import free_port


class CountingApp:
    """ASGI middleware counting the JSON-RPC methods POSTed to the wrapped app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.methods: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages, body, more = [], b"", True
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            self.methods[json.loads(body).get("method", "?")] += 1
        except (ValueError, AttributeError):
            self.methods["?"] += 1
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


class EchoServer:
    """An MCP server with one ``echo`` tool, served by uvicorn on 127.0.0.1:``port``."""

    def __init__(self, port: int) -> None:
        server = MCPServer("echo")

        @server.tool()
        def echo(text: str) -> dict[str, str]:
            """Return the text."""
            return {"text": text}

        self.app = CountingApp(server.streamable_http_app(host="127.0.0.1"))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}/mcp"

    def start(self) -> EchoServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.uvicorn.started:
            assert time.monotonic() < deadline, "the echo server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A free port; the agents' MCP URL points there for the test, and back afterwards."""
    number = free_port()
    monkeypatch.setenv("MLOPS_MCP_URL", f"http://127.0.0.1:{number}/mcp")
    agent_runtime.settings.cache_clear()
    try:
        yield number
    finally:
        mcp_client.close_sessions(f"http://127.0.0.1:{number}/mcp")
        monkeypatch.undo()
        agent_runtime.settings.cache_clear()


def test_calls_share_one_session(port: int) -> None:
    server = EchoServer(port).start()
    try:
        answers = [agent_runtime.call_tool("echo", {"text": f"call {i}"}) for i in range(5)]
    finally:
        server.stop()
    assert answers == [{"text": f"call {i}"} for i in range(5)]
    assert server.app.methods["tools/call"] == 5
    # one handshake and one tool listing (for output validation) for all five calls
    handshakes = server.app.methods["server/discover"] + server.app.methods["initialize"]
    assert handshakes == 1, server.app.methods
    assert server.app.methods["tools/list"] <= 1, server.app.methods


def test_threads_call_at_once_through_one_session(port: int) -> None:
    server = EchoServer(port).start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: agent_runtime.call_tool("echo", {"text": str(i)}), range(40)))
    finally:
        server.stop()
    assert answers == [{"text": str(i)} for i in range(40)]
    assert server.app.methods["server/discover"] + server.app.methods["initialize"] == 1


def test_a_lost_server_is_transient_and_a_new_one_gets_a_new_session(port: int) -> None:
    first = EchoServer(port).start()
    assert agent_runtime.call_tool("echo", {"text": "before"}) == {"text": "before"}
    first.stop()

    with pytest.raises(TransientError, match="unreachable calling echo"):
        agent_runtime.call_tool("echo", {"text": "while down"})

    second = EchoServer(port).start()
    try:
        assert agent_runtime.call_tool("echo", {"text": "after"}) == {"text": "after"}
    finally:
        second.stop()
    assert second.app.methods["server/discover"] + second.app.methods["initialize"] == 1


def test_an_unknown_tool_is_an_error_not_a_lost_session(port: int) -> None:
    server = EchoServer(port).start()
    try:
        with pytest.raises(Exception, match="nope") as raised:
            agent_runtime.call_tool("nope", {})
        assert not isinstance(raised.value, TransientError)
        assert agent_runtime.call_tool("echo", {"text": "still open"}) == {"text": "still open"}
    finally:
        server.stop()
    assert server.app.methods["server/discover"] + server.app.methods["initialize"] == 1


def test_closing_one_servers_sessions_leaves_the_others_open(port: int) -> None:
    first, second = EchoServer(port).start(), EchoServer(free_port()).start()
    try:
        assert agent_runtime.call_tool("echo", {"text": "first"}) == {"text": "first"}
        other = mcp_client.session_for(second.url, 30.0)
        assert other.call_tool("echo", {"text": "second"}).structured_content == {"text": "second"}

        mcp_client.close_sessions(first.url)

        assert mcp_client.session_for(second.url, 30.0) is other
        assert other.call_tool("echo", {"text": "again"}).structured_content == {"text": "again"}
        assert agent_runtime.call_tool("echo", {"text": "reopened"}) == {"text": "reopened"}
    finally:
        mcp_client.close_sessions(second.url)
        first.stop()
        second.stop()
    assert second.app.methods["server/discover"] + second.app.methods["initialize"] == 1
    assert first.app.methods["server/discover"] + first.app.methods["initialize"] == 2
