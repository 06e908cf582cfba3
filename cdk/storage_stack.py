"""``MlopsStorage``: what holds data and outlives the workflow (ARCHITECTURE §4 and §6).

- a customer-managed KMS key (rotated yearly) encrypting the bucket, the table, the topic and
  the secrets;
- the artifact bucket: versioned, SSE-KMS, TLS only, server access logs to a log bucket,
  noncurrent versions kept 90 days (at least five), access logs 365 days; the prefixes of
  ARCHITECTURE §4 (``datasets/``, ``jobs/``, ``evaluations/``, ``models/``, ``logs/``);
- the state table (waiting runs and task tokens, ``mcp_server/backends/aws/waiting.py``);
- the SNS topic of run notifications;
- the secrets: the GitHub token and the webhook secret (values set once after deploying);
- one ECR repository per image in ``training_containers/`` (scan on push);
- the SageMaker execution role, scoped to those prefixes and repositories.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk.nag import acknowledge, finding
from cdk.names import BUCKET_NAME, KEY_ACTIONS, TABLE_NAME, bucket_arn, objects_arn
from mcp_server.secrets import PLACEHOLDER

#: The bucket's prefixes: ARCHITECTURE §4's artifacts, the data preparation jobs
#: (``preparations/``), and ``data/``, where users upload the files their specs read as
#: ``s3://{bucket}/data/...``.
PREFIXES = (
    "datasets",
    "jobs",
    "evaluations",
    "models",
    "logs",
    "preparations",
    "data",
    "endpoints",
    "capture",
    "monitoring",
    "ground_truth",
)
CONTAINERS = Path(__file__).resolve().parent.parent / "training_containers"


def image_families() -> list[str]:
    """The folders of ``training_containers/`` that hold a Dockerfile (one ECR repository each)."""
    return sorted(path.parent.name for path in CONTAINERS.glob("*/Dockerfile"))


class StorageStack(Stack):
    """The long-lived resources; ``WorkflowStack`` takes them as constructor arguments.

    Attributes:
        key, bucket, table, topic, github_token, webhook_secret, repositories, sagemaker_role.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.key = kms.Key(
            self,
            "Key",
            description="issue-mlops: artifacts, state table, notifications and secrets",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logs cannot be SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            bucket_name=BUCKET_NAME,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(90),
                    noncurrent_versions_to_retain=5,
                ),
                s3.LifecycleRule(id="job-logs", prefix="logs/", expiration=Duration.days(365)),
                s3.LifecycleRule(
                    id="incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table = dynamodb.Table(
            self,
            "State",
            table_name=TABLE_NAME,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name="by-kind",
            partition_key=dynamodb.Attribute(name="kind", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="waiting_since", type=dynamodb.AttributeType.STRING),
        )
        self.topic = sns.Topic(
            self, "Runs", display_name="issue-mlops runs", master_key=self.key, enforce_ssl=True
        )
        self.github_token = self._secret(
            "GitHubToken",
            "mlops/github-token",
            "a GitHub token with read and write access to the fork's issues and contents",
            secret_string_value=SecretValue.unsafe_plain_text(f"{PLACEHOLDER}: put a GitHub token here"),
        )
        self.webhook_secret = self._secret(
            "WebhookSecret",
            "mlops/webhook-secret",
            "the webhook's HMAC secret: paste it into the GitHub webhook's Secret field",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=40, exclude_punctuation=True
            ),
        )
        self.slack_webhook = self._secret(
            "SlackWebhook",
            "mlops/slack-webhook-url",
            "the Slack incoming webhook URL monitoring alerts go to (optional: left unset, Slack is off)",
            secret_string_value=SecretValue.unsafe_plain_text(f"{PLACEHOLDER}: put a Slack webhook URL here"),
        )
        self.smtp_password = self._secret(
            "SmtpPassword",
            "mlops/smtp-password",
            "the SMTP password e-mail alerts are sent with (optional: with the smtp_* context values)",
            secret_string_value=SecretValue.unsafe_plain_text(f"{PLACEHOLDER}: put the SMTP password here"),
        )
        self.repositories = {
            family: ecr.Repository(
                self,
                f"Image-{family}",
                repository_name=f"mlops-{family}",
                image_scan_on_push=True,
                encryption=ecr.RepositoryEncryption.KMS,
                encryption_key=self.key,
                lifecycle_rules=[
                    ecr.LifecycleRule(description="keep the 20 newest images", max_image_count=20)
                ],
                removal_policy=RemovalPolicy.RETAIN,
            )
            for family in image_families()
        }
        self.sagemaker_role = self._sagemaker_role()

    def _secret(self, construct_id: str, name: str, what: str, **value: object) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=f"issue-mlops: {what}",
            encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN,
            **value,  # type: ignore[arg-type]
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Another service issues this value (GitHub's token or webhook secret, Slack's webhook, the "
            "SMTP password): it is rotated there and pasted here, not rotated by a Lambda.",
        )
        return secret

    def _sagemaker_role(self) -> iam.Role:
        """The role training and processing jobs run as: its prefixes, its images, its logs."""
        role = iam.Role(
            self,
            "SageMakerExecution",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="issue-mlops training and processing jobs",
        )
        objects = [objects_arn(prefix) for prefix in PREFIXES]
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=objects))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket_arn()],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}/*" for prefix in PREFIXES]}},
            )
        )
        for repository in self.repositories.values():
            repository.grant_pull(role)
        role.add_to_policy(iam.PolicyStatement(actions=KEY_ACTIONS, resources=[self.key.key_arn]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Jobs read and write objects under the bucket's fixed prefixes, write their own log streams "
            "under /aws/sagemaker/*, and call ECR's GetAuthorizationToken and CloudWatch's PutMetricData, "
            "which have no resource-level permissions (the latter limited to SageMaker's namespace).",
            findings=[
                *(f"Resource::{finding(objects_arn(prefix))}" for prefix in PREFIXES),
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/*",
                "Resource::*",
            ],
        )
        return role
