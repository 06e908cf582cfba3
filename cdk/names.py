"""Names and ARNs both stacks build from the account and region, without cross-stack references.

Policies that need a wildcard under a resource (objects under a bucket prefix, a table's
indexes, a state machine's executions) name it through these, so the ARNs read the same in
every stack and in cdk-nag's findings.
"""

from __future__ import annotations

from aws_cdk import Arn, ArnComponents, ArnFormat, Aws, Stack

#: The artifact bucket (ARCHITECTURE §4), one per account and region.
BUCKET_NAME = f"mlops-artifacts-{Aws.ACCOUNT_ID}-{Aws.REGION}"
#: The state table of waiting runs and task tokens.
TABLE_NAME = "mlops-state"
#: The state machine of the runs.
STATE_MACHINE_NAME = "mlops-runs"
#: The monitoring workflow, started by EventBridge Scheduler's schedules.
MONITORING_STATE_MACHINE_NAME = "mlops-monitoring"
#: The prefix of the Scheduler schedules and CloudWatch dashboards the MCP server writes per endpoint.
ENDPOINT_RESOURCE_PREFIX = "mlops-"
#: Key actions a principal that reads and writes encrypted data needs (no wildcards).
KEY_ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:DescribeKey",
]


def bucket_arn() -> str:
    """The artifact bucket's ARN."""
    return f"arn:{Aws.PARTITION}:s3:::{BUCKET_NAME}"


def objects_arn(prefix: str) -> str:
    """The ARN of every object under ``prefix/`` in the artifact bucket."""
    return f"{bucket_arn()}/{prefix}/*"


def table_arn(stack: Stack, suffix: str = "") -> str:
    """The state table's ARN (``suffix`` e.g. ``/index/*`` for its indexes)."""
    return stack.format_arn(service="dynamodb", resource="table", resource_name=f"{TABLE_NAME}{suffix}")


def executions_arn(stack: Stack) -> str:
    """The ARN of every execution of the state machine."""
    return Arn.format(
        ArnComponents(
            service="states",
            resource="execution",
            resource_name=f"{STATE_MACHINE_NAME}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        ),
        stack,
    )


def state_machine_arn(stack: Stack) -> str:
    """The state machine's ARN."""
    return stack.format_arn(
        service="states",
        resource="stateMachine",
        resource_name=STATE_MACHINE_NAME,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def monitoring_state_machine_arn(stack: Stack) -> str:
    """The monitoring state machine's ARN."""
    return stack.format_arn(
        service="states",
        resource="stateMachine",
        resource_name=MONITORING_STATE_MACHINE_NAME,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
