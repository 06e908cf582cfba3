"""Alert delivery to GitHub, Slack, e-mail and SNS (FR-023), with retries that never break a run.

One dispatcher serves both modes; the factory gives it an SNS client on AWS (none locally,
where there is no topic). Channels, as the spec's ``monitoring.alerts`` turns them on:

- **github**: a comment on the model's issue; when that issue is closed, a new issue labelled
  for the model (``mlops:train`` and ``model:NAME``), prefilled with the last spec and the
  report, so ``/retrain`` and the label start from there;
- **slack**: a POST of ``{"text": ...}`` to the incoming webhook (``MLOPS_SLACK_WEBHOOK_URL``);
- **email**: one message to the addresses through ``MLOPS_SMTP_HOST`` (STARTTLS and login when
  configured);
- **sns**: ``Publish`` to the stack's topic, with the endpoint and kind as message attributes.

Each channel is tried up to ``attempts`` times with exponential backoff and jitter (tenacity);
a channel that still fails is logged and reported in the result, and the next channel is
tried. A channel turned on but not configured (no webhook, no SMTP host, no topic) is reported
as not delivered with the setting to fill, without retries. Secrets come from the environment
locally and from Secrets Manager on AWS (``mcp_server.secrets``).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlparse

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from mcp_server.backends.base import AlertBackend, IssueBackend
from mcp_server.core.monitoring.models import AlertDelivery, AlertMessage
from mcp_server.settings import Settings

LOG = logging.getLogger(__name__)
#: Seconds a Slack or SMTP call may take.
TIMEOUT_S = 10.0


class ChannelNotConfigured(Exception):
    """A channel the spec turns on has no settings here; the message names them."""


class AlertDispatcher(AlertBackend):
    """Delivers alerts to the channels they name (see the module).

    Args:
        settings: the Slack webhook, the SMTP server and the SNS topic.
        issues: where GitHub alerts go.
        sns_client: a boto3 SNS client (AWS), or None.
        attempts: tries per channel.
        backoff_s: the first wait's ceiling, seconds (doubling, jittered, at most 30 s).
    """

    def __init__(
        self,
        settings: Settings,
        issues: IssueBackend,
        sns_client: Any = None,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self._settings = settings
        self._issues = issues
        self._sns = sns_client
        self._attempts = attempts
        self._backoff_s = backoff_s

    def deliver(self, alert: AlertMessage) -> list[AlertDelivery]:
        """Send ``alert`` to each channel it names; a failed channel never stops the others.

        Returns:
            One AlertDelivery per channel tried, in the order github, slack, email, sns.
        """
        channels = alert.channels
        senders: list[tuple[str, Callable[[], str]]] = []
        if channels.get("github", True) and alert.issue_number is not None:
            senders.append(("github", lambda: self._github(alert)))
        if channels.get("slack"):
            senders.append(("slack", lambda: self._slack(alert)))
        if channels.get("email"):
            senders.append(("email", lambda: self._email(alert, list(channels["email"]))))
        if channels.get("sns"):
            senders.append(("sns", lambda: self._publish(alert)))
        return [self._try(name, send) for name, send in senders]

    def _try(self, channel: str, send: Callable[[], str]) -> AlertDelivery:
        attempts = 0
        try:
            for attempt in Retrying(
                retry=retry_if_not_exception_type(ChannelNotConfigured),
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=self._backoff_s, max=30),
                reraise=False,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    try:
                        target = send()
                    except ChannelNotConfigured:
                        raise
                    except Exception as err:  # any failure of the channel is retried, then reported
                        LOG.warning("alert to %s failed (attempt %d): %s", channel, attempts, err)
                        raise
            return AlertDelivery(channel=channel, delivered=True, attempts=attempts, target=target)  # type: ignore[arg-type]
        except ChannelNotConfigured as err:
            LOG.warning("alert to %s not sent: %s", channel, err)
            return AlertDelivery(channel=channel, delivered=False, attempts=0, error=str(err))  # type: ignore[arg-type]
        except RetryError as err:
            last = err.last_attempt.exception()
            LOG.error("alert to %s failed after %d attempts: %s", channel, attempts, last)
            return AlertDelivery(
                channel=channel,  # type: ignore[arg-type]
                delivered=False,
                attempts=attempts,
                error=f"{type(last).__name__}: {last}"[:500],
            )

    # -- channels -----------------------------------------------------------------------------

    def _github(self, alert: AlertMessage) -> str:
        assert alert.issue_number is not None
        if self._issues.issue_state(alert.issue_number) == "open":
            key = f"alert:{alert.dedupe_key}" if alert.dedupe_key else None
            return self._issues.post_comment(alert.issue_number, alert.markdown, key).url or (
                f"issue #{alert.issue_number}"
            )
        if alert.kind == "resolved":
            return f"issue #{alert.issue_number} is closed; a resolved notice needs no new issue"
        body = (
            f"{alert.markdown}\n\n---\n\nThis issue was opened because #{alert.issue_number}, which deployed "
            f"`{alert.model_name}`, is closed. The model's last spec follows; label this issue "
            "`mlops:train` (or comment `/retrain` with a patch) to train again.\n\n"
            f"```yaml\n{alert.spec_yaml.strip()}\n```\n"
        )
        issue = self._issues.open_issue(f"[alert] {alert.subject}"[:256], body, alert.labels)
        return issue.url or f"issue #{issue.number}"

    def _slack(self, alert: AlertMessage) -> str:
        url = self._settings.slack_webhook_url
        if not url:
            raise ChannelNotConfigured("set MLOPS_SLACK_WEBHOOK_URL (on AWS, the Slack webhook secret)")
        response = httpx.post(url, json={"text": f"*{alert.subject}*\n{alert.text}"}, timeout=TIMEOUT_S)
        response.raise_for_status()
        return urlparse(url).netloc

    def _email(self, alert: AlertMessage, addresses: list[str]) -> str:
        settings = self._settings
        if not settings.smtp_host:
            raise ChannelNotConfigured("set MLOPS_SMTP_HOST (and MLOPS_SMTP_PORT, _USER, _PASSWORD, _SENDER)")
        message = EmailMessage()
        message["Subject"] = alert.subject
        message["From"] = settings.smtp_sender
        message["To"] = ", ".join(addresses)
        message.set_content(alert.text)
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
        return ", ".join(addresses)

    def _publish(self, alert: AlertMessage) -> str:
        if self._sns is None or not self._settings.sns_topic_arn:
            raise ChannelNotConfigured("SNS alerts need AWS mode and MLOPS_SNS_TOPIC_ARN (the stack's topic)")
        answer = self._sns.publish(
            TopicArn=self._settings.sns_topic_arn,
            Subject=alert.subject[:100],
            Message=alert.text,
            MessageAttributes={
                "endpoint": {"DataType": "String", "StringValue": alert.endpoint_name},
                "kind": {"DataType": "String", "StringValue": alert.kind},
            },
        )
        return str(answer["MessageId"])
