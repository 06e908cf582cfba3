"""The local engine: the workflow's ASL file run by moto's Step Functions interpreter.

moto (pinned in pyproject.toml) interprets ASL (a port of LocalStack's engine) when its
``stepfunctions.execute_state_machine`` option is on. Its ``lambda:invoke`` tasks call moto's
Lambda API over HTTP, served without Docker by moto's simple Lambda backend
(``LambdaSimpleBackend.invoke``); this module hooks that method so an invocation of a registered function name
runs the agent's Python handler in-process, and an exception becomes a Lambda function error
whose ``errorType`` is the exception's class name (what the ASL's Retry/Catch match). Only the
Step Functions client points at the moto server; every other AWS call of the process is
untouched. ``tests/functional/test_engine_contract.py`` pins the private hook.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from statemachine.functions import ACCOUNT_ID, REGION, Handler

DEFINITION_PATH = Path(__file__).with_name("mlops_workflow.asl.json")
#: The monitoring workflow, created beside the training workflow on the same engine.
MONITORING_DEFINITION_PATH = Path(__file__).with_name("monitoring_workflow.asl.json")
MONITORING_NAME = "mlops-monitoring"

_handlers: dict[str, Handler] = {}
_invoke_listeners: list[Callable[[str, dict[str, Any]], None]] = []
_original_invoke = LambdaSimpleBackend.invoke
_install_lock = threading.Lock()


class UnsupportedDefinitionError(ValueError):
    """The ASL uses a construct the local engine cannot run (JSONata, Variables, ``.sync``)."""


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the agents read."""

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    deadline_s: float

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's deadline (15 minutes, as on Lambda)."""
        return max(0, int((self.deadline_s - time.monotonic()) * 1000))


def _dispatching_invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> str | bytes | None:
    name = function_name.rsplit(":function:", 1)[-1].split(":")[0]
    handler = _handlers.get(name)
    if handler is None:
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    event = json.loads(body or "{}")
    for listener in list(_invoke_listeners):
        try:
            listener(name, event)
        except Exception:  # noqa: BLE001 - a listener never fails the task it watches
            pass
    context = LambdaContext(name, str(uuid.uuid4()), function_name, time.monotonic() + 900)
    try:
        result = handler(event, context)
        payload = json.dumps(result)
    except Exception as err:  # every failure goes back to the interpreter as a function error
        response_headers["x-amz-function-error"] = "Unhandled"
        payload = json.dumps(
            {
                "errorType": type(err).__name__,
                "errorMessage": str(err),
                "stackTrace": traceback.format_exception(err)[-5:],
            }
        )
    response_headers["Content-Length"] = str(len(payload))
    return payload


def register_handlers(handlers: dict[str, Handler]) -> None:
    """Route moto Lambda invocations of these function names to the given Python handlers.

    Args:
        handlers: Lambda function name -> ``handler(event, context) -> dict``.
    """
    with _install_lock:
        _handlers.update(handlers)
        LambdaSimpleBackend.invoke = _dispatching_invoke  # type: ignore[method-assign]


def add_invoke_listener(listener: Callable[[str, dict[str, Any]], None]) -> None:
    """Call ``listener(function_name, event)`` before each dispatched Lambda invocation.

    The execution recorder listens, to read an execution when one of its tasks starts. A
    listener's exception is ignored.
    """
    with _install_lock:
        _invoke_listeners.append(listener)


def remove_invoke_listener(listener: Callable[[str, dict[str, Any]], None]) -> None:
    """Stop calling ``listener`` (no error when it is not registered)."""
    with _install_lock:
        if listener in _invoke_listeners:
            _invoke_listeners.remove(listener)


def check_portable(definition: dict[str, Any]) -> None:
    """Refuse constructs the local engine (and this project's portability rule) do not allow.

    Raises:
        UnsupportedDefinitionError: naming the state and the construct.
    """
    if definition.get("QueryLanguage") == "JSONata":
        raise UnsupportedDefinitionError("QueryLanguage JSONata is not supported; use JSONPath")
    for name, state in definition.get("States", {}).items():
        if state.get("QueryLanguage") == "JSONata" or "Assign" in state:
            raise UnsupportedDefinitionError(f"state {name}: JSONata and Assign are not supported")
        if str(state.get("Resource", "")).endswith(".sync"):
            raise UnsupportedDefinitionError(f"state {name}: .sync integrations are not supported; poll")
        for branch in state.get("Branches", []):
            check_portable(branch)


def substitute(definition_text: str, substitutions: dict[str, str]) -> str:
    """Replace every ``${Name}`` in the ASL text, as CloudFormation's definition substitutions do.

    Raises:
        UnsupportedDefinitionError: a placeholder has no substitution.
    """

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            raise UnsupportedDefinitionError(f"no substitution for ${{{key}}}")
        return substitutions[key]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition_text)


class LocalEngine:
    """A moto server on 127.0.0.1 running the training and the monitoring workflows from their ASL files.

    One engine per process: moto's interpreter reads the server port from ``MOTO_PORT``.
    """

    def __init__(
        self,
        definition_path: Path = DEFINITION_PATH,
        name: str = "mlops-workflow",
        monitoring_definition_path: Path = MONITORING_DEFINITION_PATH,
    ) -> None:
        """Prepare the engine; nothing starts until ``start``."""
        self.definition_path = definition_path
        self.monitoring_definition_path = monitoring_definition_path
        self.name = name
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""
        self.state_machine_arn = ""
        self.monitoring_state_machine_arn = ""

    def start(self, handlers: dict[str, Handler], substitutions: dict[str, str]) -> LocalEngine:
        """Start the moto server, route the Lambda functions, and create the state machine.

        Args:
            handlers: Lambda function name -> agent handler.
            substitutions: ``${Name}`` -> value for the ASL text.

        Returns:
            self, started.

        Raises:
            UnsupportedDefinitionError: the ASL is not portable or a substitution is missing.
        """
        text = substitute(self.definition_path.read_text(), substitutions)
        check_portable(json.loads(text))
        monitoring = substitute(self.monitoring_definition_path.read_text(), substitutions)
        check_portable(json.loads(monitoring))
        register_handlers(handlers)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        os.environ["MOTO_PORT"] = str(port)
        httpx.post(
            f"{self.endpoint_url}/moto-api/config",
            json={
                "stepfunctions": {"execute_state_machine": True},
                "lambda": {"use_docker": False},
            },
        ).raise_for_status()
        self.state_machine_arn = self.create_state_machine(self.name, text)
        self.monitoring_state_machine_arn = self.create_state_machine(MONITORING_NAME, monitoring)
        return self

    def create_state_machine(self, name: str, definition_text: str) -> str:
        """Create (or update, when the name exists) a state machine on this engine's server.

        moto's backends are global to the process, so a second engine in the same process finds
        the machines of the first; the definition is then replaced.

        Returns:
            The state machine ARN.
        """
        client = self.client()
        role = f"arn:aws:iam::{ACCOUNT_ID}:role/mlops-workflow"
        try:
            return client.create_state_machine(name=name, definition=definition_text, roleArn=role)[
                "stateMachineArn"
            ]
        except client.exceptions.StateMachineAlreadyExists:
            arn = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
            client.update_state_machine(stateMachineArn=arn, definition=definition_text)
            return arn

    def client(self) -> Any:
        """Return a boto3 Step Functions client bound to this engine's moto server."""
        return boto3.client(
            "stepfunctions",
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 2}),
        )

    def stop(self) -> None:
        """Stop the moto server (running executions are abandoned)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
