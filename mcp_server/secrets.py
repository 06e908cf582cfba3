"""Secrets read from AWS Secrets Manager when a Lambda starts (Powertools' parameters utility).

The stack passes each secret's ARN, not its value: ``MLOPS_GITHUB_TOKEN_SECRET_ARN`` and
``MLOPS_WEBHOOK_SECRET_ARN``. ``load_secrets`` reads them once per cold start (Powertools caches
them for 5 minutes) into ``GITHUB_TOKEN`` and ``MLOPS_WEBHOOK_SECRET``, where the rest of the
code reads its configuration. A secret that cannot be read, or still holds the placeholder the
stack creates it with, stops the start with an error that says which secret and how to set it.
The alert channels' secrets (``MLOPS_SLACK_WEBHOOK_SECRET_ARN``, ``MLOPS_SMTP_PASSWORD_SECRET_ARN``)
are optional: while one holds its placeholder its variable stays unset and the channel is off.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from mcp_server.errors import MlopsError

#: variable the code reads -> variable holding the ARN of the secret with its value.
SECRETS = {
    "GITHUB_TOKEN": "MLOPS_GITHUB_TOKEN_SECRET_ARN",
    "MLOPS_WEBHOOK_SECRET": "MLOPS_WEBHOOK_SECRET_ARN",
    "MLOPS_SLACK_WEBHOOK_URL": "MLOPS_SLACK_WEBHOOK_SECRET_ARN",
    "MLOPS_SMTP_PASSWORD": "MLOPS_SMTP_PASSWORD_SECRET_ARN",
}
#: Secrets of optional features (alert channels): left unset while they hold the placeholder.
OPTIONAL = frozenset({"MLOPS_SLACK_WEBHOOK_URL", "MLOPS_SMTP_PASSWORD"})
#: The value the stack gives a secret the user must set (the GitHub token).
PLACEHOLDER = "REPLACE_ME"
#: Seconds a read secret is cached in the process (Powertools' ``max_age``).
MAX_AGE_S = 300


class MissingSecretError(MlopsError):
    """A secret the function needs cannot be read or has not been set."""

    code = "MISSING_SECRET"


def load_secrets(environ: MutableMapping[str, str], secrets_client: Any = None) -> list[str]:
    """Set each variable of ``SECRETS`` from its secret, unless it is set already.

    Args:
        environ: the environment to read the ARNs from and write the values to (``os.environ``).
        secrets_client: a boto3 Secrets Manager client (default: one for the environment's
            region and ``MLOPS_AWS_ENDPOINT_URL``).

    Returns:
        The names of the variables set.

    Raises:
        MissingSecretError: a secret cannot be read (missing, no permission, no key access) or
            still holds the placeholder; the message names its ARN and the command that sets it.
    """
    wanted = {
        name: environ[arn] for name, arn in SECRETS.items() if environ.get(arn) and not environ.get(name)
    }
    if not wanted:
        return []
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    if secrets_client is None:
        import boto3

        secrets_client = boto3.client(
            "secretsmanager",
            region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=environ.get("MLOPS_AWS_ENDPOINT_URL") or None,
        )
    provider = SecretsProvider(boto3_client=secrets_client)
    for name, arn in wanted.items():
        how = f"set it with: aws secretsmanager put-secret-value --secret-id {arn} --secret-string VALUE"
        try:
            value = provider.get(arn, max_age=MAX_AGE_S)
        except GetParameterError as err:
            raise MissingSecretError(f"cannot read the secret {arn} for {name} ({err}); {how}") from err
        text = value.decode() if isinstance(value, bytes) else str(value or "")
        if (not text.strip() or text.startswith(PLACEHOLDER)) and name in OPTIONAL:
            continue  # the channel is simply not configured
        if not text.strip() or text.startswith(PLACEHOLDER):
            raise MissingSecretError(f"the secret {arn} for {name} has not been set; {how}")
        environ[name] = text
    return sorted(name for name in wanted if name in environ)
