#!/bin/sh
# The MCP server's Lambda: the AWS Lambda Web Adapter (the layer's /opt/bootstrap) proxies the
# function URL's requests to this server on $PORT. Writes are enabled: this is the pipeline's own.
exec python3 -m mcp_server --host 127.0.0.1 --port "${PORT:-8080}" --allow-write
