"""Notification tools: notify."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import NotificationReceipt
from mcp_server.settings import Settings
from mcp_server.tools.guard import WRITE, guarded


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the notification tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def notify(
        subject: Annotated[
            str, Field(min_length=1, max_length=100, description="at most 100 characters (SNS)")
        ],
        message: Annotated[
            str, Field(min_length=1, max_length=262144, description="plain text, at most 256 KiB")
        ],
        attributes: Annotated[
            dict[str, str], Field(description="message attributes, e.g. issue, status")
        ] = {},  # noqa: B006
    ) -> NotificationReceipt:
        """Publish a run notification (SNS topic on AWS, notifications.jsonl locally).

        Returns:
            NotificationReceipt: message_id, topic.

        Raises:
            NotificationError: the notification cannot be published.
        """
        return backends.notification.notify(subject, message, attributes)
