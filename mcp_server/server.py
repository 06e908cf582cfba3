"""The MCP server: one server, tools grouped by capability, each over a backend interface.

``build_server`` assembles it; ``serve_in_thread`` serves it over streamable HTTP on 127.0.0.1
for local runs; ``python -m mcp_server`` runs it standalone for any MCP client.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from mcp.server import MCPServer

from mcp_server.backends.base import Backends
from mcp_server.settings import Settings
from mcp_server.tools import (
    data,
    endpoints,
    evaluation,
    github,
    history,
    monitoring,
    notification,
    registry,
    retrain,
    training,
    tuning,
)

CAPABILITIES = (
    github,
    data,
    training,
    tuning,
    evaluation,
    registry,
    endpoints,
    monitoring,
    retrain,
    notification,
    history,
)

INSTRUCTIONS = (
    "issue-mlops: drives the ML lifecycle of a training request from a GitHub issue. "
    "prepare_dataset, then start_training_job and poll describe_training_job until it is not "
    "InProgress (with a tuning section: start_tuning_job and describe_tuning_job, then "
    "describe_training_job of the best trial), then evaluate_model, register_model, "
    "record_training_history, post_comment and notify. With a deployment section: package_model, "
    "deploy_model, then shift_traffic, get_endpoint_metrics and rollback_endpoint as the strategy "
    "goes. Tools that change the world need a "
    "server started with --allow-write."
)


def build_server(
    settings: Settings, backends: Backends | None = None, base_dir: Path | None = None
) -> MCPServer:
    """Build the MCP server with every capability's tools.

    Args:
        settings: configuration (``allow_write`` gates the mutating tools).
        backends: the backends to use; built from ``settings`` by the factory when None.
        base_dir: folder that relative ``file://`` dataset paths resolve against (default: cwd).

    Returns:
        The server, not yet serving.
    """
    if backends is None:
        from mcp_server.backends.factory import build_backends

        backends = build_backends(settings, base_dir or Path.cwd())
    server = MCPServer("issue-mlops", instructions=INSTRUCTIONS, log_level="WARNING")
    for capability in CAPABILITIES:
        capability.register(server, backends, settings)
    return server


@dataclass
class RunningServer:
    """An MCP server served over streamable HTTP in a background thread."""

    url: str
    uvicorn_server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (at most 5 seconds)."""
        self.uvicorn_server.should_exit = True
        self.thread.join(timeout=5)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_in_thread(server: MCPServer, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``server`` over streamable HTTP at ``http://{host}:{port}/mcp`` in a daemon thread.

    Args:
        server: the MCP server.
        host: interface to bind; 127.0.0.1 unless you mean to expose it.
        port: TCP port; 0 picks a free one.

    Returns:
        The running server, once it accepts connections.

    Raises:
        RuntimeError: uvicorn did not start within 10 seconds.
    """
    port = port or free_port(host)
    config = uvicorn.Config(
        server.streamable_http_app(host=host), host=host, port=port, log_level="warning", lifespan="on"
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="mcp-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the MCP server did not start on {host}:{port}")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{port}/mcp", uv, thread)
