"""The CDK app that deploys issue-mlops to an AWS account: ``cdk deploy`` (see the README).

Two stacks, split by lifetime: ``MlopsStorage`` (the KMS key, the bucket, the state table, the
topic, the secrets, the ECR repositories and the SageMaker role: data that outlives any
version of the workflow) and ``MlopsWorkflow`` (the Lambdas, the MCP server, the webhook API,
the state machine, alarms and the dashboard: replaced freely).
"""
