"""Run the MCP server standalone: ``python -m mcp_server --port 8765 [--allow-write]``."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mcp_server.secrets import load_secrets
from mcp_server.server import build_server
from mcp_server.settings import Settings


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve over streamable HTTP until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m mcp_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--allow-write",
        action="store_true",
        help="allow tools that start jobs, register models, comment and commit",
    )
    args = parser.parse_args(argv)
    load_secrets(os.environ)  # AWS: the GitHub token from Secrets Manager, once per cold start
    settings = Settings.from_env(allow_write=True) if args.allow_write else Settings.from_env()
    server = build_server(settings, base_dir=Path.cwd())
    asyncio.run(server.run_streamable_http_async(host=args.host, port=args.port))


if __name__ == "__main__":
    main()
