"""Run notifications published to an SNS topic (``settings.sns_topic_arn``).

The subject is cut to SNS's 100 characters on one line (``clean_subject``, shared with the local
backend), the attributes become SNS string message attributes (subscribers filter on them, e.g.
``{"status": ["failed"]}``), and a message over SNS's 256 KiB limit is cut with a note rather
than refused.
"""

from __future__ import annotations

import re
from typing import Any

from mcp_server.backends.aws.clients import aws_client, translated
from mcp_server.backends.base import NotificationBackend
from mcp_server.backends.local.notification import clean_subject
from mcp_server.core.models import NotificationReceipt
from mcp_server.errors import NotificationError
from mcp_server.settings import Settings

#: SNS's limit on a whole message, attributes included, in bytes (SNS "Publish" reference).
MAX_MESSAGE_BYTES = 262_144
#: Room left for the subject and the attributes when cutting a long message, in bytes.
_MESSAGE_BUDGET = MAX_MESSAGE_BYTES - 16_384
#: SNS allows at most 10 message attributes.
MAX_ATTRIBUTES = 10
#: An attribute name: letters, digits, ``_``, ``-``, ``.``; at most 256 characters; not starting
#: with ``AWS.`` or ``Amazon.`` nor with a dot (SNS "Message attributes").
_ATTRIBUTE_NAME = re.compile(r"(?!(?:AWS|Amazon)\.|\.)[A-Za-z0-9_.-]{1,256}", re.IGNORECASE)
_CUT_NOTE = "\n\n[message cut to fit SNS's 256 KiB limit]"


def fit_message(message: str, budget_bytes: int = _MESSAGE_BUDGET) -> str:
    """Return ``message`` unchanged when its UTF-8 form fits ``budget_bytes``, else cut with a note."""
    encoded = message.encode("utf-8")
    if len(encoded) <= budget_bytes:
        return message
    room = budget_bytes - len(_CUT_NOTE.encode("utf-8"))
    return encoded[:room].decode("utf-8", errors="ignore") + _CUT_NOTE


def message_attributes(attributes: dict[str, str]) -> dict[str, dict[str, str]]:
    """Return SNS string message attributes for ``attributes``.

    Raises:
        NotificationError: more than 10 attributes, or a name SNS refuses.
    """
    if len(attributes) > MAX_ATTRIBUTES:
        raise NotificationError(
            f"{len(attributes)} notification attributes; SNS allows at most {MAX_ATTRIBUTES}"
        )
    result = {}
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.fullmatch(str(name)) or ".." in str(name) or str(name).endswith("."):
            raise NotificationError(
                f"notification attribute name {str(name)[:80]!r} is not allowed by SNS: use letters, "
                "digits, '_', '-' and '.', at most 256 characters, not starting with 'AWS.' or 'Amazon.'"
            )
        result[str(name)] = {"DataType": "String", "StringValue": str(value) or " "}
    return result


class SnsNotificationBackend(NotificationBackend):
    """Publishes notifications to ``settings.sns_topic_arn``.

    Args:
        settings: ``sns_topic_arn``, ``aws_region`` and ``aws_endpoint_url``.
        sns_client: a boto3 SNS client to use instead of building one.

    Raises:
        NotificationError: no topic is configured (``MLOPS_SNS_TOPIC_ARN``).
    """

    def __init__(self, settings: Settings, sns_client: Any = None) -> None:
        if not settings.sns_topic_arn:
            raise NotificationError(
                "AWS mode publishes notifications to SNS: set MLOPS_SNS_TOPIC_ARN to the stack's topic ARN"
            )
        self._topic = settings.sns_topic_arn
        self._client = sns_client or aws_client(settings, "sns")

    def notify(self, subject: str, message: str, attributes: dict[str, str]) -> NotificationReceipt:
        """Publish one message to the topic.

        Args:
            subject: one-line summary; cut to 100 characters with ``…`` (the SNS limit).
            message: the body; cut with a note past about 240 KiB of UTF-8.
            attributes: at most 10 string attributes, e.g. ``{"issue": "12", "status": "failed"}``.

        Returns:
            SNS's ``MessageId`` and the topic ARN.

        Raises:
            NotificationError: SNS refused the message (a missing topic or permission, an invalid
                attribute); the message names SNS's code.
            TransientError: SNS throttled or could not be reached after botocore's retries.
        """
        arguments = {
            "TopicArn": self._topic,
            "Subject": clean_subject(subject) or "issue-mlops",
            "Message": fit_message(message) or " ",
            "MessageAttributes": message_attributes(attributes),
        }
        with translated(f"publish to {self._topic}", "SNS", NotificationError):
            answer = self._client.publish(**arguments)
        return NotificationReceipt(message_id=answer["MessageId"], topic=self._topic)
