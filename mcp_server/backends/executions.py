"""Starting retrain executions of the training workflow: Step Functions on AWS, or the local engine.

On AWS the client is Step Functions' own and the state machine is ``MLOPS_STATE_MACHINE_ARN``
(set by the stack). Locally the same API is the local engine's moto server: the runtime sets
``MLOPS_STEPFUNCTIONS_ENDPOINT_URL`` and ``MLOPS_STATE_MACHINE_ARN`` once the engine runs,
and both are read at each call (the MCP server starts before the engine).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from mcp_server.backends.aws.clients import translated
from mcp_server.errors import MlopsError
from mcp_server.settings import Settings


class WorkflowExecutions:
    """Starts and describes executions of the training workflow.

    Args:
        settings: the region and the AWS endpoint override.
        client: a boto3 Step Functions client to use instead of building one.
    """

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self._settings = settings
        self._client = client

    def _sfn(self) -> tuple[Any, str]:
        machine = os.environ.get("MLOPS_STATE_MACHINE_ARN", "")
        if not machine:
            raise MlopsError(
                "no training workflow to start: MLOPS_STATE_MACHINE_ARN is unset (the stack sets it on AWS; "
                "locally the runtime of mlops serve or mlops monitor does)"
            )
        if self._client is not None:
            return self._client, machine
        local = os.environ.get("MLOPS_STEPFUNCTIONS_ENDPOINT_URL")
        if local:
            client = boto3.client(
                "stepfunctions", region_name="us-east-1", endpoint_url=local,
                aws_access_key_id="local", aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 2}),
            )  # fmt: skip
        else:
            client = boto3.client(
                "stepfunctions", region_name=self._settings.aws_region,
                endpoint_url=self._settings.aws_endpoint_url,
            )  # fmt: skip
        return client, machine

    def start(self, name: str, execution_input: str) -> tuple[str, bool]:
        """Start an execution named ``name`` (once: a name that exists is not started again).

        Returns:
            ``(execution ARN, started)``: ``started`` is False when it existed already.

        Raises:
            MlopsError: no state machine configured, or Step Functions refused.
        """
        client, machine = self._sfn()
        arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        with translated(f"start execution {name}", "Step Functions", MlopsError):
            try:
                started = client.start_execution(stateMachineArn=machine, name=name, input=execution_input)
            except client.exceptions.ExecutionAlreadyExists:
                return arn, False
        return str(started["executionArn"]), True

    def status(self, execution_arn: str) -> str:
        """An execution's status (``RUNNING``, ``SUCCEEDED``, ...); ``UNKNOWN`` when it is gone.

        Raises:
            MlopsError: no state machine configured, or Step Functions refused.
        """
        client, _ = self._sfn()
        with translated(f"describe execution {execution_arn}", "Step Functions", MlopsError):
            try:
                return str(client.describe_execution(executionArn=execution_arn)["status"])
            except client.exceptions.ExecutionDoesNotExist:
                return "UNKNOWN"
