"""The local engine's contract with moto's private Lambda hook, and the ASL file's shape."""

from __future__ import annotations

import inspect
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

from mcp_server.core.workflow.state import RESUMABLE_STATES
from mcp_server.errors import RETRYABLE_ERRORS, TransientError
from statemachine.engine import (
    DEFINITION_PATH,
    MONITORING_DEFINITION_PATH,
    UnsupportedDefinitionError,
    add_invoke_listener,
    check_portable,
    register_handlers,
    remove_invoke_listener,
    substitute,
)
from statemachine.executions import ExecutionRecorder, state_durations, summarise_history
from statemachine.functions import FUNCTIONS, function_arn, local_substitutions

ATTEMPTS: dict[str, int] = {}


def echo(event, context):
    return {**event, "seen_by": context.function_name}


def flaky(event, context):
    ATTEMPTS["flaky"] = ATTEMPTS.get("flaky", 0) + 1
    if ATTEMPTS["flaky"] < 2:
        raise TransientError("try again")
    return {"attempts": ATTEMPTS["flaky"]}


def broken(event, context):
    raise ValueError("bad value 42")


CONTRACT_ASL = {
    "StartAt": "Echo",
    "States": {
        "Echo": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn("contract-echo"), "Payload": {"x.$": "$.x"}},
            "OutputPath": "$.Payload",
            "Next": "Flaky",
        },
        "Flaky": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn("contract-flaky"), "Payload": {}},
            "ResultSelector": {"attempts.$": "$.Payload.attempts"},
            "ResultPath": "$.flaky",
            "Retry": [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "Next": "Broken",
        },
        "Broken": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn("contract-broken"), "Payload": {}},
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}


def test_moto_simple_lambda_invoke_keeps_the_signature_the_hook_replaces():
    # The hook replaces this private method; a moto upgrade that changes it must fail here.
    params = list(inspect.signature(LambdaSimpleBackend.invoke).parameters)
    assert params == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_lambda_tasks_dispatch_retry_and_catch(runtime):
    register_handlers({"contract-echo": echo, "contract-flaky": flaky, "contract-broken": broken})
    engine = runtime.engine
    arn = engine.create_state_machine("contract", json.dumps(CONTRACT_ASL))
    client = engine.client()
    execution = client.start_execution(stateMachineArn=arn, name="contract-1", input=json.dumps({"x": 5}))
    while (described := client.describe_execution(executionArn=execution["executionArn"]))[
        "status"
    ] == "RUNNING":
        time.sleep(0.05)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["x"] == 5 and output["seen_by"] == "contract-echo"
    assert output["flaky"] == {"attempts": 2}
    assert output["error"]["Error"] == "ValueError"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "bad value 42"
    events = client.get_execution_history(executionArn=execution["executionArn"])["events"]
    summary = summarise_history(events)
    assert [s["name"] for s in summary["states"]] == ["Echo", "Flaky", "Broken", "Caught"]
    assert all(s["duration_s"] is not None for s in summary["states"])
    assert dict((n, v) for n, v, _ in state_durations(summary["states"]))["Flaky"] == 1


def test_the_workflow_definition_is_portable_and_every_task_retries_and_catches():
    definition = json.loads(substitute(DEFINITION_PATH.read_text(), local_substitutions()))
    check_portable(definition)
    states = definition["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) >= {
        "PrepareData",
        "StartTraining",
        "DescribeTraining",
        "Evaluate",
        "Judge",
        "RegisterModel",
        "RecordHistory",
        "Notify",
        "RecordFailure",
        "NotifyFailure",
        "RecordAttempt",
        "AskOperator",
    }
    results = {
        "PrepareData": "$.dataset",
        "StartTraining": "$.training",
        "DescribeTraining": "$.training",
        "Evaluate": "$.evaluation",
        "Judge": "$.verdict",
        "RegisterModel": "$.model",
        "RecordHistory": "$.history",
        "RecordAttempt": "$.history",
        "RecordFailure": "$.history",
        "Notify": "$.notification",
        "NotifyFailure": "$.notification",
        "AskOperator": "$",
        **{
            name: "$.deployment"
            for name in (
                "PackageModel",
                "CompareChampion",
                "Deploy",
                "CheckAlarms",
                "ShiftTraffic",
                "Promote",
                "Rollback",
            )
        },
    }
    for name, task in tasks.items():
        assert task["ResultPath"] == results[name], name
        assert "OutputPath" not in task, name
        assert list(task["Retry"][0]["ErrorEquals"][: len(RETRYABLE_ERRORS)]) == list(RETRYABLE_ERRORS), name
        assert task["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        if name == "AskOperator":
            assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        else:
            assert task["Resource"].startswith("arn:aws:lambda:"), name
        if name not in ("RecordFailure", "NotifyFailure", "AskOperator"):
            failed = states[task["Catch"][-1]["Next"]]
            assert failed["Parameters"]["State"] == name, "a caught error names the state that failed"
            assert failed["Next"] == "RecordFailure"
    ask = states["AskOperator"]
    assert ask["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert ask["TimeoutSecondsPath"] == "$.config.operator_timeout_s"
    assert ask["Catch"][0] == {
        "ErrorEquals": ["States.Timeout"],
        "ResultPath": "$.error",
        "Next": "OperatorTimedOut",
    }
    choices = {c["StringEquals"]: c["Next"] for c in states["OperatorDecision"]["Choices"]}
    assert choices == {"retrain": "PrepareData", "approve": "RegisterModel", "cancel": "RecordHistory"}
    loop = {c["StringEquals"]: c["Next"] for c in states["DeploymentStatus"]["Choices"]}
    assert loop == {
        "baking": "WaitForBake",
        "shifting": "ShiftTraffic",
        "promote": "Promote",
        "rollback": "Rollback",
    }
    assert states["WaitForBake"]["SecondsPath"] == "$.deployment.interval_s"
    assert states["WaitForBake"]["Next"] == "CheckAlarms" and tasks["ShiftTraffic"]["Next"] == "WaitForBake"
    assert tasks["RegisterModel"]["Next"] == "DeploymentChoice"
    assert definition["StartAt"] == "Start"
    assert [c["Next"] for c in states["Start"]["Choices"]] == list(RESUMABLE_STATES)
    functions = {
        s["Parameters"]["FunctionName"]
        if "Parameters" in s and "FunctionName" in s["Parameters"]
        else s["Resource"]
        for s in tasks.values()
    }
    monitoring = json.loads(substitute(MONITORING_DEFINITION_PATH.read_text(), local_substitutions()))
    check_portable(monitoring)
    monitoring_functions = {s["Resource"] for s in monitoring["States"].values() if s["Type"] == "Task"}
    # every agent runs in one of the two workflows
    assert functions | monitoring_functions == {function_arn(name) for name, _ in FUNCTIONS.values()}
    assert monitoring_functions == {function_arn("mlops-monitor"), function_arn("mlops-retrain")}
    for name, task in ((n, s) for n, s in monitoring["States"].items() if s["Type"] == "Task"):
        assert task["Retry"][0]["ErrorEquals"][0] == "TransientError", name
        assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    targets = {s.get("Next") for s in states.values()} | {
        c["Next"] for s in states.values() for c in s.get("Choices", []) + s.get("Catch", [])
    }
    targets |= {s.get("Default") for s in states.values()}
    assert set(states) - targets == {"Start"}, "every state but the start is reachable"


def test_unportable_definitions_are_refused_at_load():
    with pytest.raises(UnsupportedDefinitionError, match="JSONata"):
        check_portable({"QueryLanguage": "JSONata", "States": {}})
    with pytest.raises(UnsupportedDefinitionError, match=r"state Train: \.sync"):
        check_portable(
            {
                "States": {
                    "Train": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync"}
                }
            }
        )
    with pytest.raises(UnsupportedDefinitionError, match="Assign"):
        check_portable({"States": {"A": {"Type": "Pass", "Assign": {"x": 1}}}})
    with pytest.raises(UnsupportedDefinitionError, match=r"no substitution for \$\{Missing\}"):
        substitute('{"a": "${Missing}"}', {})


def test_a_started_runtime_has_frozen_its_start_up_objects(runtime) -> None:
    """Full collections skip the libraries' objects (``freeze_start_up_objects``)."""
    import gc

    assert gc.get_freeze_count() > 100_000


class CountingClient:
    """The engine's real boto3 client, counting the history reads."""

    def __init__(self, client):
        self.client = client
        self.history_reads = 0

    def get_execution_history(self, **kwargs):
        self.history_reads += 1
        return self.client.get_execution_history(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


RELEASE = threading.Event()
HELD = threading.Event()


def held(event, context):
    HELD.set()
    RELEASE.wait(10)
    return {"held": True}


RECORDED_ASL = {
    "StartAt": "Held",
    "States": {
        "Held": {
            "Type": "Task",
            "Resource": function_arn("recorded-held"),
            "Parameters": {"execution.$": "$$.Execution.Name"},
            "ResultPath": "$.held",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 3, "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    },
}


def test_the_recorder_reads_an_execution_when_its_task_starts_and_when_it_ends(runtime, tmp_path):
    """A task's start and the execution's end are read at once; a quiet execution is not polled."""
    register_handlers({"recorded-held": held})
    engine = runtime.engine
    arn = engine.create_state_machine("recorded", json.dumps(RECORDED_ASL))
    client = CountingClient(engine.client())
    recorder = ExecutionRecorder(client, tmp_path, "test", poll_s=0.2, idle_refresh_s=60).start()

    def listener(function_name, event):
        recorder.notify(event.get("execution"))

    add_invoke_listener(listener)
    RELEASE.clear()
    HELD.clear()
    try:
        name = f"recorded-{uuid.uuid4().hex[:8]}"
        execution_arn = client.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
        recorder.follow(execution_arn)
        deadline = time.monotonic() + 5
        while recorder.latest(execution_arn)["current_state"] != "Held":
            assert time.monotonic() < deadline, "the task's start was not read"
            time.sleep(0.05)
        assert HELD.wait(5)
        time.sleep(0.5)  # the read the task's start asked for is done
        reads_while_held = client.history_reads
        time.sleep(1.5)  # 7 ticks of a quiet execution: none reads the history
        assert client.history_reads == reads_while_held
        RELEASE.set()
        deadline = time.monotonic() + 20
        while (record := recorder.latest(execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the end was not read"
            time.sleep(0.05)
        assert [s["name"] for s in record["states"]] == ["Held", "Pause", "Done"]
        assert client.history_reads <= reads_while_held + 2  # the 3 s Wait was not polled
        assert json.loads((tmp_path / f"{name}.json").read_text())["status"] == "SUCCEEDED"
    finally:
        RELEASE.set()
        remove_invoke_listener(listener)
        recorder.stop()


def test_due_executions():
    recorder = ExecutionRecorder(client=None, records_dir=Path("/nonexistent"), idle_refresh_s=2.0)
    recorder._read_at = {"a": 100.0, "b": 100.0, "c": 97.0}
    recorder._arns = {"a": "RUNNING", "b": "RUNNING", "c": "RUNNING"}
    recorder._by_name = {"a": "a", "b": "b", "c": "c"}
    assert recorder.due(["a", "b", "c"], {"a", "b", "c"}, now=100.5) == ["c"]  # only the idle one
    recorder.notify("b")
    recorder.notify("unknown")
    assert recorder.due(["a", "b", "c"], {"a", "b", "c"}, now=100.5) == ["b", "c"]  # b's task started
    assert recorder.due(["a", "b"], {"b"}, now=100.5) == ["a"]  # a left the RUNNING list: it ended
    assert recorder.due(["a", "b"], None, now=100.5) == ["a", "b"]  # the list failed: read them all
