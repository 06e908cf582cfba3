"""Acknowledging cdk-nag findings, each with its reason, where the construct is made.

cdk-nag 3 reports through CDK's validation framework: a finding is accepted by acknowledging its
exact id, ``AwsSolutions::<rule>`` or, for granular rules (IAM4, IAM5), one id per finding,
``AwsSolutions::<rule>[<finding>]`` (e.g. ``[Resource::*]``). Resources whose wildcards are
acknowledged have deterministic names, so the finding ids here never depend on generated
logical ids.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Aws, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Accept ``rule`` (e.g. ``AwsSolutions-IAM5``) on ``scope`` and what it contains, for ``reason``.

    Args:
        scope: the construct (its children included) the findings are accepted on.
        rule: the rule, without the pack prefix.
        reason: why it is accepted; written into the validation report.
        findings: for granular rules, the findings accepted (``Resource::*``,
            ``Action::kms:ReEncrypt*``, ...); empty for the whole rule.
    """
    ids = [f"AwsSolutions::{rule}[{finding}]" for finding in findings] or [f"AwsSolutions::{rule}"]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


def finding(arn: str) -> str:
    """Write an ARN built from pseudo parameters as cdk-nag shows it: ``<AWS::Region>`` and so on.

    Args:
        arn: literal text and ``Aws.ACCOUNT_ID`` / ``Aws.REGION`` / ``Aws.PARTITION`` tokens, as
            ``cdk.names`` builds them.
    """
    for token, shown in _PSEUDO_PARAMETERS.items():
        arn = arn.replace(token, shown)
    return arn


_PSEUDO_PARAMETERS = {
    Aws.ACCOUNT_ID: "<AWS::AccountId>",
    Aws.REGION: "<AWS::Region>",
    Aws.PARTITION: "<AWS::Partition>",
}
