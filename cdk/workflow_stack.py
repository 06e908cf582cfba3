"""``MlopsWorkflow``: the webhook API, the agents, the MCP server, the state machine and their alarms.

- API Gateway ``POST /webhook`` -> the webhook function (``agents/issue_detector.py``), which
  checks the signature and starts executions;
- one function per agent of ``statemachine/functions.py`` (the table the local engine uses),
  plus the execution reporter, run by an EventBridge rule when an execution fails, times out or
  is stopped;
- the MCP server as a function behind a function URL with ``AWS_IAM`` auth; the agents sign
  their requests with SigV4 and are the only principals allowed to call it;
- the state machine from ``statemachine/mlops_workflow.asl.json``, the same file the local
  engine runs, its ``${…FunctionArn}`` filled by definition substitutions;
- logs kept 90 days (NFR-010), X-Ray on every function and the state machine, alarms on failed
  executions and on function errors and throttles (to the SNS topic), and a dashboard.

IAM is per function: agents may only invoke the MCP server's URL; the MCP server holds the AWS
permissions of the tools (S3 prefixes, SageMaker jobs and model packages, ``iam:PassRole`` of
the SageMaker role only, the table, the topic, the GitHub token, task responses).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk import names
from cdk.bundling import RUNTIME, lambda_code
from cdk.nag import acknowledge, finding
from cdk.storage_stack import PREFIXES, StorageStack
from statemachine.functions import FUNCTIONS

ASL = Path(__file__).resolve().parent.parent / "statemachine" / "mlops_workflow.asl.json"
MONITORING_ASL = ASL.with_name("monitoring_workflow.asl.json")
RETENTION = logs.RetentionDays.THREE_MONTHS
#: The AWS Lambda Web Adapter's layer (x86_64), published by AWS in every commercial region.
WEB_ADAPTER_LAYER = "arn:aws:lambda:{region}:753240598075:layer:LambdaAdapterLayerX86:25"
#: SageMaker actions the MCP server's tools call (training, tuning, processing, the registry).
SAGEMAKER_ACTIONS = [
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:CreateModelPackageGroup",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:CreateModelPackage",
    "sagemaker:DescribeModelPackage",
    "sagemaker:UpdateModelPackage",
    "sagemaker:ListModelPackages",
    "sagemaker:AddTags",
    "sagemaker:CreateModel",
    "sagemaker:DescribeModel",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DeleteEndpoint",
    "sagemaker:InvokeEndpoint",
]
#: Endpoint alarms and metrics (CloudWatch) and variant auto scaling (Application Auto Scaling).
MONITORING_ACTIONS = [
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:DescribeScalableTargets",
]
#: EventBridge Scheduler actions of the monitoring schedules (on ``schedule/default/mlops-*``).
SCHEDULER_ACTIONS = ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:GetSchedule"]
#: SMTP settings of e-mail alerts, as CDK context values (the password is a secret).
SMTP_CONTEXT = {
    "smtp_host": "MLOPS_SMTP_HOST",
    "smtp_port": "MLOPS_SMTP_PORT",
    "smtp_user": "MLOPS_SMTP_USER",
    "smtp_sender": "MLOPS_SMTP_SENDER",
}


#: The kinds of SageMaker resources those actions apply to.
SAGEMAKER_RESOURCES = (
    "training-job",
    "hyper-parameter-tuning-job",
    "processing-job",
    "model-package-group",
    "model-package",
    "model",
    "endpoint-config",
    "endpoint",
)


class WorkflowStack(Stack):
    """The workflow, wired to ``storage``'s resources.

    Args:
        storage: the ``MlopsStorage`` stack.
        github_repository: ``owner/name`` of the fork the issues and history live in.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        storage: StorageStack,
        github_repository: str,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.storage = storage
        self.code = lambda_code()
        state_machine_arn = names.state_machine_arn(self)
        self.scheduler_role = self._scheduler_role()
        environment = self._environment(github_repository, state_machine_arn)
        self.mcp_server = self._mcp_server(environment)
        self.mcp_url = self.mcp_server.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
        agent_environment = {
            **environment,
            "MLOPS_MCP_URL": f"{self.mcp_url.url}mcp",
            "MLOPS_MCP_AUTH": "aws_iam",
        }
        self.agents = {
            prefix: self._function(prefix, target.replace(":", "."), agent_environment, Duration.minutes(15))
            for prefix, (_, target) in FUNCTIONS.items()
        }
        self.state_machine = self._state_machine()
        self.monitoring_state_machine = self._state_machine(
            "Monitoring", names.MONITORING_STATE_MACHINE_NAME, MONITORING_ASL, Duration.hours(6)
        )
        self.webhook = self._function(
            "Webhook",
            "agents.issue_detector.handler",
            {**agent_environment, "MLOPS_STATE_MACHINE_ARN": state_machine_arn},
            Duration.seconds(29),
        )
        self.state_machine.grant_start_execution(self.webhook)
        self.monitoring_state_machine.grant_start_execution(self.webhook)  # a push: code-change retraining
        _read_secret(self.webhook, storage, storage.webhook_secret.secret_arn)
        self.reporter = self._function(
            "ExecutionReporter", "agents.execution_reporter.handler", agent_environment, Duration.minutes(5)
        )
        self.reporter.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:GetExecutionHistory"],
                resources=[names.executions_arn(self)],
            )
        )
        for function in (*self.agents.values(), self.webhook, self.reporter):
            self.mcp_url.grant_invoke_url(function)
        self._report_endings()
        self.api = self._api()
        self._alarms_and_dashboard()
        CfnOutput(
            self, "WebhookUrl", value=f"{self.api.url}webhook", description="GitHub webhook payload URL"
        )
        CfnOutput(self, "McpServerUrl", value=self.mcp_url.url, description="MCP server (IAM auth)")
        CfnOutput(self, "BucketName", value=storage.bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "MonitoringStateMachineArn", value=self.monitoring_state_machine.state_machine_arn)
        self._acknowledge()

    # -----------------------------------------------------------------------------------------

    def _environment(self, github_repository: str, state_machine_arn: str) -> dict[str, str]:
        storage = self.storage
        images = {
            f"MLOPS_TRAINING_IMAGE_{family.upper()}": f"{repository.repository_uri}:latest"
            for family, repository in storage.repositories.items()
        }
        return {
            "MLOPS_BACKEND": "aws",
            "MLOPS_BUCKET": storage.bucket.bucket_name,
            "MLOPS_STATE_TABLE": storage.table.table_name,
            "MLOPS_SNS_TOPIC_ARN": storage.topic.topic_arn,
            "MLOPS_SAGEMAKER_ROLE_ARN": storage.sagemaker_role.role_arn,
            "MLOPS_GITHUB_TOKEN_SECRET_ARN": storage.github_token.secret_arn,
            "MLOPS_WEBHOOK_SECRET_ARN": storage.webhook_secret.secret_arn,
            "MLOPS_STATE_MACHINE_ARN": state_machine_arn,
            "MLOPS_MONITORING_STATE_MACHINE_ARN": names.monitoring_state_machine_arn(self),
            "MLOPS_SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            "MLOPS_SLACK_WEBHOOK_SECRET_ARN": storage.slack_webhook.secret_arn,
            "MLOPS_SMTP_PASSWORD_SECRET_ARN": storage.smtp_password.secret_arn,
            **{
                variable: str(self.node.try_get_context(key))
                for key, variable in SMTP_CONTEXT.items()
                if self.node.try_get_context(key)
            },
            "GITHUB_REPOSITORY": github_repository,
            "POWERTOOLS_SERVICE_NAME": "issue-mlops",
            **images,
        }

    def _function(
        self, name: str, handler: str, environment: dict[str, str], timeout: Duration, **options: object
    ) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{name}Logs", retention=RETENTION)
        return lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            code=self.code,
            handler=handler,
            environment=environment,
            timeout=timeout,
            memory_size=512,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            **options,  # type: ignore[arg-type]
        )

    def _mcp_server(self, environment: dict[str, str]) -> lambda_.Function:
        """The MCP server under the Lambda Web Adapter, with the tools' AWS permissions."""
        storage = self.storage
        server = self._function(
            "McpServer",
            "run.sh",
            {**environment, "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap", "PORT": "8080"},
            Duration.minutes(15),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "WebAdapter", WEB_ADAPTER_LAYER.format(region=self.region)
                )
            ],
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[names.objects_arn(prefix) for prefix in PREFIXES],
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[storage.bucket.bucket_arn])
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=SAGEMAKER_ACTIONS,
                resources=[
                    self.format_arn(service="sagemaker", resource=kind, resource_name="*")
                    for kind in SAGEMAKER_RESOURCES
                ],
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=MONITORING_ACTIONS,
                resources=["*"],  # GetMetricData and the scaling actions have no resource-level control
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/"
                    "sagemaker.application-autoscaling.amazonaws.com/*"
                ],
                conditions={
                    "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
                },
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[storage.sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # Grants across the stacks are written on this side only, so MlopsStorage never refers to
        # MlopsWorkflow (its key policy trusts the account's IAM policies).
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Query",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[names.table_arn(self), names.table_arn(self, "/index/*")],
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[storage.topic.topic_arn])
        )
        _read_secret(
            server, storage, storage.github_token.secret_arn
        )  # and the key of the bucket, table, topic
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"],
                resources=["*"],  # task tokens carry no ARN: Step Functions has no resource-level control
            )
        )
        # monitoring: retrain executions, Scheduler schedules, endpoint dashboards, alert secrets
        server.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[names.state_machine_arn(self)])
        )
        server.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[names.executions_arn(self)])
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=SCHEDULER_ACTIONS,
                resources=[
                    self.format_arn(
                        service="scheduler",
                        resource="schedule",
                        resource_name=f"default/{names.ENDPOINT_RESOURCE_PREFIX}*",
                    )
                ],
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        server.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutDashboard"],
                resources=[
                    f"arn:{self.partition}:cloudwatch::{self.account}:dashboard/{names.ENDPOINT_RESOURCE_PREFIX}*"
                ],
            )
        )
        for secret in (storage.slack_webhook, storage.smtp_password):
            _read_secret(server, storage, secret.secret_arn)
        return server

    def _scheduler_role(self) -> iam.Role:
        """The role EventBridge Scheduler's monitoring schedules assume: start the monitoring workflow."""
        role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
            ),
            description="issue-mlops: EventBridge Scheduler starts the monitoring workflow",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[names.monitoring_state_machine_arn(self)]
            )
        )
        return role

    def _state_machine(
        self,
        construct_id: str = "Workflow",
        name: str = names.STATE_MACHINE_NAME,
        definition: Path = ASL,
        timeout: Duration | None = None,
    ) -> sfn.StateMachine:
        """A state machine from its ASL file, its Task resources the agents' ARNs."""
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=RETENTION)
        machine = sfn.StateMachine(
            self,
            construct_id,
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_string(definition.read_text(encoding="utf-8")),
            definition_substitutions={
                f"{prefix}FunctionArn": function.function_arn for prefix, function in self.agents.items()
            },
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            timeout=timeout or Duration.days(30),
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn for function in self.agents.values()],
            )
        )
        return machine

    def _report_endings(self) -> None:
        """Executions that fail, time out or are stopped go to the execution reporter."""
        events.Rule(
            self,
            "ExecutionEnded",
            description="issue-mlops: report executions that ended without reporting themselves",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                },
            ),
            targets=[targets.LambdaFunction(self.reporter, retry_attempts=4)],
        )

    def _api(self) -> apigateway.RestApi:
        access_logs = logs.LogGroup(self, "WebhookAccessLogs", retention=RETENTION)
        api = apigateway.RestApi(
            self,
            "WebhookApi",
            description="issue-mlops: GitHub webhook deliveries",
            deploy_options=apigateway.StageOptions(
                stage_name="prod",
                tracing_enabled=True,
                logging_level=apigateway.MethodLoggingLevel.INFO,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                throttling_rate_limit=20,
                throttling_burst_limit=40,
            ),
            cloud_watch_role=True,
        )
        api.root.add_resource("webhook").add_method("POST", apigateway.LambdaIntegration(self.webhook))
        return api

    def _alarms_and_dashboard(self) -> None:
        topic = actions.SnsAction(self.storage.topic)
        failed = self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum")
        timed_out = self.state_machine.metric_timed_out(period=Duration.minutes(5), statistic="Sum")
        monitoring_failed = self.monitoring_state_machine.metric_failed(
            period=Duration.minutes(5), statistic="Sum"
        )
        for name, metric in (
            ("ExecutionsFailed", failed),
            ("ExecutionsTimedOut", timed_out),
            ("MonitoringExecutionsFailed", monitoring_failed),
        ):
            cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ).add_alarm_action(topic)
        functions = {
            **self.agents,
            "Webhook": self.webhook,
            "ExecutionReporter": self.reporter,
            "McpServer": self.mcp_server,
        }
        for name, function in functions.items():
            for kind, metric in (
                ("Errors", function.metric_errors(period=Duration.minutes(5))),
                ("Throttles", function.metric_throttles(period=Duration.minutes(5))),
            ):
                cloudwatch.Alarm(
                    self,
                    f"{name}{kind}",
                    metric=metric,
                    threshold=1,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                ).add_alarm_action(topic)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{self.stack_name}-runs")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    self.state_machine.metric_started(),
                    self.state_machine.metric_succeeded(),
                    failed,
                    timed_out,
                ],
            ),
            cloudwatch.GraphWidget(
                title="Monitoring executions",
                left=[self.monitoring_state_machine.metric_started(), monitoring_failed],
            ),
            cloudwatch.GraphWidget(
                title="Function errors", left=[function.metric_errors() for function in functions.values()]
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p95)",
                left=[function.metric_duration(statistic="p95") for function in functions.values()],
            ),
        )

    def _acknowledge(self) -> None:
        """The findings this stack accepts, each with its reason."""
        acknowledge(
            self,
            "AwsSolutions-IAM4",
            "AWSLambdaBasicExecutionRole only lets a function write its own log streams, and "
            "AmazonAPIGatewayPushToCloudWatchLogs is API Gateway's account-level logging role; both are "
            "AWS's own narrow policies.",
            findings=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            ],
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "Each wildcard is scoped: objects under the bucket's fixed prefixes; the state table's indexes; "
            "SageMaker jobs, model packages, models, endpoint configs and endpoints of this account and "
            "region, named per run and endpoint; the state machine's executions (read by the execution "
            "reporter and the retrain tools); the Scheduler schedules and CloudWatch dashboards the "
            "monitoring tools write per endpoint (named mlops-ENDPOINT); Application Auto Scaling's "
            "service-linked role for SageMaker; and X-Ray's "
            "PutTraceSegments, Step Functions' task responses, CloudWatch's GetMetricData and alarms and "
            "Application Auto Scaling's actions, which have no resource-level permissions.",
            findings=[
                "Resource::*",
                *(f"Resource::{finding(names.objects_arn(prefix))}" for prefix in PREFIXES),
                "Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/"
                f"{names.TABLE_NAME}/index/*",
                *(
                    f"Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{kind}/*"
                    for kind in SAGEMAKER_RESOURCES
                ),
                "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                f"{names.STATE_MACHINE_NAME}:*",
                "Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/aws-service-role/"
                "sagemaker.application-autoscaling.amazonaws.com/*",
                "Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/default/"
                f"{names.ENDPOINT_RESOURCE_PREFIX}*",
                "Resource::arn:<AWS::Partition>:cloudwatch::<AWS::AccountId>:dashboard/"
                f"{names.ENDPOINT_RESOURCE_PREFIX}*",
            ],
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "The handler checks X-Hub-Signature-256 over the raw body before parsing anything; a "
            "request validator would parse unauthenticated bodies first.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "GitHub's deliveries are authenticated by HMAC and throttled at the stage; a WAF web ACL "
            "is left to the fork (it costs while idle).",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "GitHub cannot send IAM or Cognito credentials; each delivery is authenticated by its "
            "HMAC signature (X-Hub-Signature-256) in the handler.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "GitHub cannot send Cognito tokens; deliveries are authenticated by HMAC.",
        )


def _read_secret(function: lambda_.Function, storage: StorageStack, secret_arn: str) -> None:
    """Let ``function`` read one secret, and use the key that encrypts it (policy on its side)."""
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], resources=[secret_arn]
        )
    )
    _use_key(function, storage)


def _use_key(function: lambda_.Function, storage: StorageStack) -> None:
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=names.KEY_ACTIONS,
            resources=[storage.key.key_arn],
        )
    )
