"""The CDK app, synthesised in-process with CloudFormation validation and cdk-nag on.

One synthesis per module (about 4 s with validation; bundling is skipped: ``make synth`` builds
the Lambda bundle). The assertions read the templates through ``aws_cdk.assertions.Template``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import Stack  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from cdk.app import build_app  # noqa: E402
from cdk.storage_stack import image_families  # noqa: E402
from statemachine.functions import FUNCTIONS  # noqa: E402

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "mlops_workflow.asl.json"
NO_BUNDLING = {"aws:cdk:bundling-stacks": [], "github_repository": "acme/models"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(NO_BUNDLING, outdir=str(outdir))
    app.synth()  # raises on an unacknowledged cdk-nag finding or an invalid template
    storage = app.node.find_child("MlopsStorage")
    workflow = app.node.find_child("MlopsWorkflow")
    assert isinstance(storage, Stack) and isinstance(workflow, Stack)
    return {
        "storage": Template.from_stack(storage),
        "workflow": Template.from_stack(workflow),
        "report": json.loads((outdir / "validation-report.json").read_text()),
        "outdir": outdir,
    }


def statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    """Every IAM statement of the policies attached to roles whose logical id starts with ``role_prefix``."""
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [role.get("Ref", "") for role in policy["Properties"]["Roles"]]
        if any(role.startswith(role_prefix) for role in roles):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(found: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for statement in found:
        action = statement["Action"]
        names.update([action] if isinstance(action, str) else action)
    return names


def test_cdk_nag_passes_with_every_acknowledgement_justified(synthesized: dict[str, Any]) -> None:
    [nag] = [p for p in synthesized["report"]["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    suppressed = nag["suppressedViolations"]
    assert {s["ruleName"].split("[")[0] for s in suppressed} == {
        "AwsSolutions-SMG4",
        "AwsSolutions-IAM4",
        "AwsSolutions-IAM5",
        "AwsSolutions-APIG2",
        "AwsSolutions-APIG3",
        "AwsSolutions-APIG4",
        "AwsSolutions-COG4",
    }
    assert all(len(s["reason"]) > 40 for s in suppressed)


def test_an_unacknowledged_finding_fails_the_synthesis(tmp_path: Path) -> None:
    from aws_cdk import aws_s3 as s3

    app = build_app(NO_BUNDLING, outdir=str(tmp_path))
    s3.Bucket(app.node.find_child("MlopsStorage"), "Careless")  # no TLS policy, no logs

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    [nag] = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    failing = {v["ruleName"] for v in nag["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= failing


def test_the_bucket_is_versioned_kms_encrypted_tls_only_logged_and_expires_old_versions(
    synthesized: dict[str, Any],
) -> None:
    storage = synthesized["storage"]
    storage.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": Match.any_value(),
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                    }
                ]
            },
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": "artifacts/",
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "NoncurrentVersionExpiration": {
                                    "NoncurrentDays": 90,
                                    "NewerNoncurrentVersions": 5,
                                },
                                "Status": "Enabled",
                            }
                        ),
                        Match.object_like({"Prefix": "logs/", "ExpirationInDays": 365}),
                    ]
                )
            },
        },
    )
    storage.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )
    storage.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_table_topic_secrets_and_image_repositories(synthesized: dict[str, Any]) -> None:
    storage = synthesized["storage"]
    storage.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "mlops-state",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [Match.object_like({"IndexName": "by-kind"})],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )
    storage.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    storage.resource_count_is("AWS::SecretsManager::Secret", 4)
    for name in (
        "mlops/slack-webhook-url",
        "mlops/smtp-password",
    ):  # optional: the placeholder turns the channel off
        storage.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {"Name": name, "SecretString": Match.string_like_regexp("^REPLACE_ME")},
        )
    storage.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": "mlops/github-token", "SecretString": Match.string_like_regexp("^REPLACE_ME")},
    )  # load_secrets refuses to start with it: the user sets the token
    storage.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": "mlops/webhook-secret", "GenerateSecretString": Match.object_like({"PasswordLength": 40})},
    )
    families = image_families()
    assert {"evaluation", "sklearn", "xgboost", "pytorch"} <= set(families)
    storage.resource_count_is("AWS::ECR::Repository", len(families))
    for family in families:
        storage.has_resource_properties(
            "AWS::ECR::Repository",
            {"RepositoryName": f"mlops-{family}", "ImageScanningConfiguration": {"ScanOnPush": True}},
        )


def test_the_state_machine_is_the_asl_file_with_the_agents_arns(synthesized: dict[str, Any]) -> None:
    workflow = synthesized["workflow"]
    machines = {
        m["Properties"]["StateMachineName"]: m
        for m in workflow.find_resources("AWS::StepFunctions::StateMachine").values()
    }
    assert set(machines) == {"mlops-runs", "mlops-monitoring"}
    monitoring = machines["mlops-monitoring"]["Properties"]["DefinitionString"]
    monitoring_text = monitoring if isinstance(monitoring, str) else json.dumps(monitoring)
    assert "${MonitorFunctionArn}" in monitoring_text and "${RetrainFunctionArn}" in monitoring_text
    properties = machines["mlops-runs"]["Properties"]
    assert properties["StateMachineName"] == "mlops-runs"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    substitutions = properties["DefinitionSubstitutions"]
    assert set(substitutions) == {f"{prefix}FunctionArn" for prefix in FUNCTIONS}
    assert all("Fn::GetAtt" in value for value in substitutions.values())
    definition = properties["DefinitionString"]
    text = definition if isinstance(definition, str) else json.dumps(definition)
    assert "${TrainingFunctionArn}" in text  # substituted by CloudFormation at deploy time
    asl_states = set(json.loads(ASL.read_text())["States"])
    assert all(f'\\"{state}\\"' in text or f'"{state}"' in text for state in asl_states)


def test_functions_are_traced_logged_90_days_and_on_the_latest_python(synthesized: dict[str, Any]) -> None:
    workflow = synthesized["workflow"]
    functions = workflow.find_resources("AWS::Lambda::Function")
    assert len(functions) == len(FUNCTIONS) + 3  # the agents, the webhook, the reporter, the MCP server
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.14"
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert "LoggingConfig" in properties
    handlers = {f["Properties"]["Handler"] for f in functions.values()}
    assert {target.replace(":", ".") for _, target in FUNCTIONS.values()} <= handlers
    assert {"agents.issue_detector.handler", "agents.execution_reporter.handler", "run.sh"} <= handlers
    for group in workflow.find_resources("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 90


def test_the_mcp_server_is_behind_an_iam_function_url_only_the_agents_may_call(
    synthesized: dict[str, Any],
) -> None:
    workflow = synthesized["workflow"]
    workflow.has_resource_properties("AWS::Lambda::Url", {"AuthType": "AWS_IAM"})
    agent = statements(workflow, "Training")
    assert actions_of(agent) == {
        "lambda:InvokeFunctionUrl",  # a function URL needs both since 2025
        "lambda:InvokeFunction",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    [invoke] = [s for s in agent if "lambda:InvokeFunctionUrl" in s["Action"]]
    resource = json.dumps(invoke["Resource"])
    assert "McpServer" in resource and '"*"' not in resource  # the MCP server's function, nothing else
    server = statements(workflow, "McpServer")
    passes = {
        s["Condition"]["StringEquals"]["iam:PassedToService"]: s
        for s in server
        if s["Action"] == "iam:PassRole"
    }
    assert set(passes) == {"sagemaker.amazonaws.com", "scheduler.amazonaws.com"}  # each role to its service
    pass_role = passes["sagemaker.amazonaws.com"]
    assert "Fn::ImportValue" in json.dumps(pass_role["Resource"])  # the storage stack's SageMaker role only
    server_actions = actions_of(server)
    assert {
        "sagemaker:CreateTrainingJob",
        "sagemaker:CreateModelPackage",
        "sns:Publish",
        "dynamodb:Query",
    } <= server_actions
    assert not any(action.endswith("*") for action in server_actions)
    assert {
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "cloudwatch:PutDashboard",
        "states:StartExecution",
    } <= server_actions
    assert "SchedulerRole" in json.dumps(passes["scheduler.amazonaws.com"]["Resource"])
    scheduler_role = statements(workflow, "SchedulerRole")
    assert actions_of(scheduler_role) == {"states:StartExecution"}
    assert "mlops-monitoring" in json.dumps(scheduler_role[0]["Resource"])
    environment = next(
        f["Properties"]["Environment"]["Variables"]
        for f in workflow.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "run.sh"
    )
    assert {
        "MLOPS_MONITORING_STATE_MACHINE_ARN",
        "MLOPS_SCHEDULER_ROLE_ARN",
        "MLOPS_SLACK_WEBHOOK_SECRET_ARN",
    } <= set(environment)
    webhook_statements = statements(workflow, "Webhook")
    webhook = actions_of(webhook_statements)
    assert "states:StartExecution" in webhook
    assert "sagemaker:CreateTrainingJob" not in webhook
    starts = json.dumps([s["Resource"] for s in webhook_statements if s["Action"] == "states:StartExecution"])
    assert "Monitoring" in starts and "Workflow" in starts  # a push starts code-change monitoring executions


def test_webhook_api_alarms_and_dashboard(synthesized: dict[str, Any]) -> None:
    workflow = synthesized["workflow"]
    workflow.has_resource_properties("AWS::ApiGateway::Method", {"HttpMethod": "POST"})
    workflow.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "webhook"})
    workflow.has_resource_properties(
        "AWS::ApiGateway::Stage", {"TracingEnabled": True, "AccessLogSetting": Match.any_value()}
    )
    alarms = workflow.find_resources("AWS::CloudWatch::Alarm")
    metrics = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) for a in alarms.values()}
    assert {
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
    } <= metrics
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    workflow.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    workflow.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"detail": Match.object_like({"status": ["FAILED", "TIMED_OUT", "ABORTED"]})}
            )
        },
    )
    outputs = workflow.find_outputs("*")
    assert {"WebhookUrl", "McpServerUrl", "BucketName", "StateMachineArn"} <= set(outputs)
