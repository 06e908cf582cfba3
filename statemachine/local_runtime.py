"""Local mode: the MCP server, the engine, the recorder and the webhook handler in one process.

``LocalRuntime`` is what ``mlops run`` and ``mlops serve`` start: the MCP server over streamable
HTTP on 127.0.0.1 (write enabled, as the pipeline's own deployment is), the local engine running
the ASL file with each Lambda task dispatched to its agent, the execution recorder, the real
webhook handler pointed at the engine, and (for ``mlops serve``) the worker that does each
webhook delivery's work after it was answered.

Each runtime holds a lease (``runtimes.RuntimeLease``) for its life. When it starts, it resumes
the executions of runtimes that died (``recover``): each comes back under its own name at the
Task state it was in, as Step Functions' redrive does; one that cannot is reported on its issue
with a failed record. Every execution that ends without reporting itself (an error no Catch
takes, a timeout, a stop) is reported by the execution reporter.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agents import execution_reporter, mcp_client
from agents import runtime as agent_runtime
from agents.issue_detector import DetectorConfig, IssueDetector
from mcp_server.core.models import WaitingRun
from mcp_server.core.workflow.ending import reported_by_workflow
from mcp_server.core.workflow.state import RESUMABLE_STATES, WorkflowState
from mcp_server.errors import NotFoundError
from mcp_server.server import RunningServer, build_server, serve_in_thread
from mcp_server.settings import Settings
from statemachine.engine import (
    DEFINITION_PATH,
    MONITORING_DEFINITION_PATH,
    LocalEngine,
    add_invoke_listener,
    remove_invoke_listener,
)
from statemachine.executions import TERMINAL, ExecutionRecorder, read_record
from statemachine.functions import FUNCTIONS, load_handlers, local_substitutions
from statemachine.recovery import last_state, resume_point
from statemachine.scheduler import LocalScheduler
from statemachine.webhooks import api_gateway_event
from statemachine.workspace import (
    Backends,
    RuntimeLease,
    build_backends,
    ensure_workspace,
    exclusive,
    runtime_alive,
    warm_up_libraries,
    webhook_secret,
    write_json_atomic,
)

logger = logging.getLogger("statemachine")

#: Seconds between two scans of the workspace for deliveries nobody is working on.
DELIVERY_SCAN_S = 2.0


def quiet_libraries() -> None:
    """Keep library chatter (moto's interpreter, werkzeug, MLflow, the MCP SDK) off the console.

    MLflow sets its loggers' levels when it is imported, so this runs again after the warm-up.
    """
    for name in ("moto", "werkzeug", "mlflow", "mcp", "httpx", "alembic", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    agent_runtime.logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])


def warm_up(settings: Settings) -> None:
    """Import what the tools use and open the MLflow store once, as a long-running server has.

    The first use of a workspace creates MLflow's SQLite schema (about 2.6 s) and the first
    tool calls import scikit-learn, XGBoost, matplotlib and MLflow's scikit-learn flavour; doing
    it at start-up keeps those one-off costs out of the first run.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import xgboost  # noqa: F401
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    quiet_libraries()
    warm_up_libraries(settings)
    # MLflow checks a model's pinned requirements against the installed packages once per process.
    warn_dependency_requirement_mismatches(["scikit-learn", "pandas"])


def freeze_start_up_objects() -> None:
    """Move every object alive after start-up out of the garbage collector's sight (``gc.freeze``).

    The runtime imports MLflow, moto, scikit-learn and XGBoost: about 700,000 tracked objects
    that live as long as the process. Each full collection walked all of them (about 0.6 s of
    CPU under the GIL, several times a minute under load); frozen, collections walk only what
    the runs create. See the ``gc.freeze`` documentation.
    """
    gc.collect()
    gc.freeze()


#: The Lambda functions of the monitoring workflow (its executions are not recorded).
MONITORING_FUNCTIONS = frozenset({FUNCTIONS["Monitor"][0], FUNCTIONS["Retrain"][0]})


class LocalRuntime:
    """Everything a local run needs, started together and stopped together.

    Args:
        settings: the workspace settings (``allow_write`` is forced on for the pipeline's server).
        base_dir: folder that relative ``file://`` dataset paths resolve against.
        force_local_issues: use the local issue store even when a GitHub token is set
            (``mlops run`` simulates an issue that exists only locally).
        operator_timeout_s: seconds a run waits for its operator (default
            ``MLOPS_OPERATOR_TIMEOUT_S``, else 7 days).
        serve_deliveries: run the worker that does the work of webhook deliveries received
            by ``receive`` (``mlops serve``); ``deliver`` does its own delivery's work either way.
        command: what this runtime serves, for ``mlops status``.
        definition_path: the ASL the engine runs (default ``statemachine/mlops_workflow.asl.json``;
            the AWS tests pass the definition the CDK app synthesised).
        monitoring_definition_path: the monitoring workflow's ASL (default
            ``statemachine/monitoring_workflow.asl.json``; the AWS tests pass the synthesised one).
    """

    def __init__(
        self,
        settings: Settings,
        base_dir: Path,
        force_local_issues: bool = False,
        operator_timeout_s: int | None = None,
        serve_deliveries: bool = False,
        command: str = "mlops",
        definition_path: Path | None = None,
        monitoring_definition_path: Path | None = None,
    ) -> None:
        """Prepare; nothing starts until ``start`` (or ``with``)."""
        if force_local_issues:
            settings = dataclasses.replace(settings, github_token=None, github_repository=None)
        self.settings = dataclasses.replace(settings, allow_write=True)
        self.base_dir = base_dir
        self.serve_deliveries = serve_deliveries
        self.command = command
        self.definition_path = definition_path
        self.monitoring_definition_path = monitoring_definition_path
        self.lease: RuntimeLease | None = None
        self.backends: Backends | None = None
        self.mcp: RunningServer | None = None
        self.engine: LocalEngine | None = None
        self.recorder: ExecutionRecorder | None = None
        self.detector: IssueDetector | None = None
        self.secret = b""
        self.reports: list[dict[str, Any]] = []
        self.resumed: list[str] = []
        self.operator_timeout_s = operator_timeout_s or int(
            os.environ.get("MLOPS_OPERATOR_TIMEOUT_S", str(7 * 24 * 3600))
        )
        self._inbox: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    @property
    def runtime_id(self) -> str:
        """This runtime's id (its lease)."""
        assert self.lease is not None, "start the runtime first"
        return self.lease.runtime_id

    def start(self) -> LocalRuntime:
        """Start the MCP server, the engine and the recorder, resume what died, serve deliveries."""
        quiet_libraries()
        ensure_workspace(self.settings)
        self.lease = RuntimeLease.acquire(self.settings.home, self.command)
        os.environ["MLOPS_RUNTIME_LEASE"] = str(self.lease.lock_path)
        self.secret = webhook_secret(self.settings)
        self.backends = build_backends(self.settings, self.base_dir)
        warming = threading.Thread(target=warm_up, args=(self.settings,), name="warm-up", daemon=True)
        warming.start()
        self.mcp = serve_in_thread(build_server(self.settings, self.backends))
        os.environ["MLOPS_MCP_URL"] = self.mcp.url
        agent_runtime.settings.cache_clear()
        engine = LocalEngine(
            self.definition_path or DEFINITION_PATH,
            monitoring_definition_path=self.monitoring_definition_path or MONITORING_DEFINITION_PATH,
        )
        self.engine = engine.start(load_handlers(), local_substitutions())
        # the MCP server's start_retraining and the CLI's monitor start executions on this engine
        os.environ["MLOPS_STEPFUNCTIONS_ENDPOINT_URL"] = self.engine.endpoint_url
        os.environ["MLOPS_STATE_MACHINE_ARN"] = self.engine.state_machine_arn
        os.environ["MLOPS_MONITORING_STATE_MACHINE_ARN"] = self.engine.monitoring_state_machine_arn
        self.recorder = ExecutionRecorder(
            self.engine.client(), self.records_dir, self.runtime_id, on_end=self._ended
        ).start()
        add_invoke_listener(self._task_starting)
        config = DetectorConfig(
            webhook_secret=self.secret,
            state_machine_arn=self.engine.state_machine_arn,
            poll_interval_s=self.settings.poll_interval_s,
            operator_timeout_s=self.operator_timeout_s,
            monitoring_state_machine_arn=self.engine.monitoring_state_machine_arn,
        )
        self.detector = IssueDetector(
            config, self.engine.client(), self.backends.deliveries, runtime_id=self.runtime_id
        )
        warming.join()
        freeze_start_up_objects()
        self.resumed = self.recover()
        if self.serve_deliveries:
            self._worker = threading.Thread(target=self._work_deliveries, name="deliveries", daemon=True)
            self._worker.start()
        return self

    def _task_starting(self, function_name: str, event: dict[str, Any]) -> None:
        """Engine listener: a task of ``event["execution"]`` is starting; its record is read.

        A training execution nobody follows yet (a retrain the monitoring workflow started) is
        followed from its first task on, so it is recorded, reported and resumed like the rest.
        Monitoring executions are not recorded: a monitoring run that dies is read again at the
        next one (the window only moves once a job is done).
        """
        if self.recorder is None or self.engine is None:
            return
        name = event.get("execution")
        if name and function_name not in MONITORING_FUNCTIONS and not self.recorder.knows(name):
            arn = self.engine.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
            threading.Thread(target=self.recorder.follow, args=(arn,), name="follow", daemon=True).start()
        self.recorder.notify(name)

    @property
    def records_dir(self) -> Path:
        """The folder of execution records."""
        return self.settings.home / "executions"

    def __enter__(self) -> LocalRuntime:
        """Start and return the runtime."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop everything."""
        self.stop()

    def start_scheduler(self, tick_s: float = 30.0) -> LocalScheduler:
        """Start the monitoring scheduler (``mlops serve``); stop it before the runtime.

        With local endpoints, each tick also samples their system metrics.
        """
        assert self.engine is not None, "start the runtime first"
        assert self.backends is not None, "start the runtime first"
        sampler = None
        if self.settings.backend == "local":
            from mcp_server.backends.local.endpoints import LocalEndpointBackend

            sampler = LocalEndpointBackend(self.settings).record_system_metrics
        return LocalScheduler(
            self.backends.monitoring,
            self.engine.client(),
            self.engine.monitoring_state_machine_arn,
            tick_s,
            sampler=sampler,
        ).start()

    def monitor(
        self,
        endpoint_name: str,
        requested_by: str = "",
        trigger: str = "manual",
        timeout_s: float = 3600,
        on_update: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Run the monitoring workflow for an endpoint now and wait for its end.

        Returns:
            ``{"name", "arn", "status", "output" (the final MonitoringState as JSON, or None),
            "error", "cause"}``.

        Raises:
            TimeoutError: it did not end within ``timeout_s`` seconds.
        """
        assert self.engine is not None, "start the runtime first"
        client = self.engine.client()
        name = f"monitor-{endpoint_name[:50]}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"
        arn = client.start_execution(
            stateMachineArn=self.engine.monitoring_state_machine_arn,
            name=name,
            input=json.dumps(
                {"endpoint_name": endpoint_name, "trigger": trigger, "requested_by": requested_by}
            ),
        )["executionArn"]
        return self.wait_monitoring(arn, timeout_s, on_update)

    def wait_monitoring(
        self, arn: str, timeout_s: float = 3600, on_update: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Wait for a monitoring execution's end (``on_update`` gets each state it enters).

        Returns:
            ``{"name", "arn", "status", "output" (the final MonitoringState as JSON, or None),
            "error", "cause"}``; for a failure, the failing task's own error and cause.

        Raises:
            TimeoutError: it did not end within ``timeout_s`` seconds.
        """
        assert self.engine is not None, "start the runtime first"
        client = self.engine.client()
        name = arn.rsplit(":", 1)[-1]
        deadline = time.monotonic() + timeout_s
        while True:
            described = client.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            if on_update is not None:
                history = client.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=5)
                entered = [e for e in history["events"] if e["type"].endswith("StateEntered")]
                if entered:
                    on_update(entered[0]["stateEnteredEventDetails"]["name"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"monitoring execution {name} did not end within {timeout_s:.0f} s")
            time.sleep(0.2)
        output = described.get("output")
        error, cause = described.get("error"), described.get("cause")
        if described["status"] != "SUCCEEDED":  # the task's own failure says more than the Fail state
            events = client.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=100)[
                "events"
            ]
            for event in events:
                details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails")
                if details:
                    error, cause = details.get("error", error), _error_message(details.get("cause")) or cause
                    break
        return {
            "name": name,
            "arn": arn,
            "status": described["status"],
            "output": json.loads(output) if output else None,
            "error": error,
            "cause": cause,
        }

    def stop(self) -> None:
        """Stop the worker, the recorder, the engine and the MCP server; give the lease up.

        Executions still running are resumed by the next runtime that starts on this workspace.
        """
        self._stopping.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
        remove_invoke_listener(self._task_starting)
        if self.recorder:
            self.recorder.stop()
        if self.engine:
            self.engine.stop()
        if self.mcp:
            mcp_client.close_sessions(self.mcp.url)
            self.mcp.stop()
        if self.lease:
            self.lease.release()

    # -----------------------------------------------------------------------------------------
    # Webhook deliveries
    # -----------------------------------------------------------------------------------------

    def receive(self, event: dict[str, Any]) -> dict[str, Any]:
        """Answer an API Gateway proxy event at once; its work is queued for the worker.

        Returns:
            The handler's proxy response (202 when the delivery was stored for its work).
        """
        assert self.detector is not None, "start the runtime first"
        response = self.detector.receive(event)
        if response["statusCode"] == 202:
            self._inbox.put(json.loads(response["body"])["delivery_id"])
        return response

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Answer a proxy event and do its work now; follow any execution it starts.

        Returns:
            The handler's proxy response; an accepted delivery's body carries its outcome.
        """
        assert self.detector is not None, "start the runtime first"
        response = self.detector.handle(event)
        self._follow_outcome(json.loads(response["body"]))
        return response

    def deliver(
        self, event_name: str, payload: dict[str, Any], delivery_id: str | None = None
    ) -> dict[str, Any]:
        """Sign ``payload`` with the workspace secret, deliver it, and do its work now.

        Returns:
            The response body (decoded JSON: the work's outcome for an accepted delivery) plus
            its ``statusCode``.
        """
        response = self.handle(api_gateway_event(self.secret, event_name, payload, delivery_id))
        return {"statusCode": response["statusCode"], **json.loads(response["body"])}

    def process_pending(self) -> list[dict[str, Any]]:
        """Do the work of every delivery waiting for it (received, released, or left by a dead runtime).

        Returns:
            The outcomes, in order.
        """
        assert self.detector is not None, "start the runtime first"
        assert self.backends is not None, "start the runtime first"
        outcomes = []
        for delivery_id in self.backends.deliveries.pending():
            outcome = self.detector.process(delivery_id)
            if outcome is not None:
                self._follow_outcome(outcome)
                outcomes.append(outcome)
        return outcomes

    def _follow_outcome(self, outcome: dict[str, Any]) -> None:
        if outcome.get("execution_arn") and self.recorder is not None:
            self.recorder.follow(outcome["execution_arn"])

    def _work_deliveries(self) -> None:
        """The worker: do each delivery's work after its answer; retry the ones released."""
        retry_at: dict[str, float] = {}
        last_scan = 0.0
        while not self._stopping.is_set():
            try:
                ids = [self._inbox.get(timeout=0.1)]
            except queue.Empty:
                ids = []
            now = time.monotonic()
            if now - last_scan > DELIVERY_SCAN_S:
                ids += self.backends.deliveries.pending()  # type: ignore[union-attr]
                last_scan = now
            for delivery_id in dict.fromkeys(ids):
                if retry_at.get(delivery_id, 0.0) > now:
                    continue
                try:
                    outcome = self.detector.process(delivery_id)  # type: ignore[union-attr]
                except Exception:  # noqa: BLE001 - one delivery must not stop the worker
                    logger.exception("delivery %s could not be processed", delivery_id)
                    continue
                if outcome is None:
                    continue
                self._follow_outcome(outcome)
                if outcome.get("status") == "unavailable":
                    tries = self.backends.deliveries.get(delivery_id).attempts  # type: ignore[union-attr]
                    retry_at[delivery_id] = now + min(60.0, 2.0**tries)

    # -----------------------------------------------------------------------------------------
    # Executions: following, resuming, reporting
    # -----------------------------------------------------------------------------------------

    def recover(self, timeout_s: float = 60) -> list[str]:
        """Resume every execution whose runtime died, as Step Functions' redrive would.

        Each comes back under its own name at the Task state it was in (``recovery``), with
        the state's input from its record; a run waiting for its operator keeps its deadline and
        posts nothing twice. One that cannot be resumed is reported (comment, failed record).

        Returns:
            The ARNs of the resumed executions, once each that waits for its operator waits again.

        Raises:
            TimeoutError: a resumed run did not wait for its operator again within ``timeout_s``.
        """
        claimed = self._claim_orphans()
        resumed: dict[str, str] = {}
        waiting_before: dict[str, str] = {}
        for record in claimed:
            arn, run_id, token = self._resume(record)
            if arn is not None:
                resumed[record["name"]] = arn
                if run_id is not None:
                    waiting_before[run_id] = token or ""
        deadline = time.monotonic() + timeout_s
        while any(self._token(run_id) == token for run_id, token in waiting_before.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"resumed runs did not wait again within {timeout_s:.0f} s")
            time.sleep(0.05)
        return list(resumed.values())

    def resume_waiting_runs(self, timeout_s: float = 60) -> list[str]:
        """Resume the runs that wait for their operator under a dead runtime (see ``recover``)."""
        return self.recover(timeout_s)

    def _claim_orphans(self) -> list[dict[str, Any]]:
        """Take over, under the workspace lock, every RUNNING record whose runtime is dead."""
        claimed = []
        with exclusive(self.records_dir / ".recover.lock"):
            for path in sorted(self.records_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
                record = read_record(path)
                if record is None or record.get("status") != "RUNNING":
                    continue
                owner = record.get("runtime_id")
                if owner == self.runtime_id or runtime_alive(self.settings.home, owner):
                    continue
                record["runtime_id"] = self.runtime_id
                write_json_atomic(path, record)
                claimed.append(record)
        return claimed

    def _resume(self, record: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        """Start ``record``'s execution again where it was; report it when that is impossible.

        Returns:
            (the new execution ARN or None, the run id when it resumes waiting for its operator,
            the task token it waited with).
        """
        assert self.engine is not None, "start the runtime first"
        assert self.recorder is not None, "start the runtime first"
        point = resume_point(record, RESUMABLE_STATES)
        if point is None:
            self._give_up(record, "its record holds no workflow state to resume from")
            return None, None, None
        name, state = point
        try:
            parsed = WorkflowState.model_validate(state)
        except ValidationError as err:
            self._give_up(
                record, f"the state before {name} is not a workflow state ({err.error_count()} errors)"
            )
            return None, None, None
        waiting, token = None, None
        if name == "AskOperator":
            waiting, token = self._waiting(parsed.run_id)
            remaining = 1
            if waiting is not None:
                deadline = datetime.fromisoformat(waiting.timeout_at) - datetime.now(UTC)
                remaining = max(1, int(deadline.total_seconds()))
            state = {**state, "config": {**state.get("config", {}), "operator_timeout_s": remaining}}
        client = self.engine.client()
        try:
            arn = client.start_execution(
                stateMachineArn=self.engine.state_machine_arn,
                name=record["name"],
                input=json.dumps({**state, "resume": name}),
            )["executionArn"]
        except Exception as err:  # noqa: BLE001 - whatever refuses it, the run is reported
            self._give_up(record, f"the engine refused to start it again: {err}")
            return None, None, None
        self.recorder.follow(arn, earlier=record)
        logger.info("execution %s resumed at %s", record["name"], name)
        return arn, parsed.run_id if waiting is not None else None, token

    def _waiting(self, run_id: str) -> tuple[WaitingRun | None, str | None]:
        try:
            run = self.backends.waiting.get(run_id)  # type: ignore[union-attr]
        except NotFoundError:
            return None, None
        return run, run.task_token

    def _token(self, run_id: str) -> str | None:
        return self._waiting(run_id)[1]

    def _give_up(self, record: dict[str, Any], why: str) -> None:
        """Mark a record FAILED (it cannot be resumed) and report it on its issue."""
        record.update(
            status="FAILED",
            error="ResumeFailed",
            cause=f"The runtime running this execution stopped and it could not be resumed: {why}.",
            stopped_at=datetime.now(UTC).isoformat(),
        )
        write_json_atomic(self.records_dir / f"{record['name']}.json", record)
        self._ended(record)

    def _ended(self, record: dict[str, Any]) -> None:
        """Report an ended execution that its own states did not report (the execution reporter)."""
        if reported_by_workflow(record["status"], record.get("error")):
            return
        state, data = last_state(record)
        event = {
            "name": record["name"],
            "status": record["status"],
            "error": record.get("error"),
            "cause": record.get("cause"),
            "input": record.get("input"),
            "last_state": state,
            "last_data": data,
        }
        try:
            reported = execution_reporter.handler(event, None)
        except Exception:  # noqa: BLE001 - logged; the record keeps the ending
            logger.exception("execution %s ended and could not be reported", record["name"])
            reported = {"reported": False, "reason": "the reporter failed"}
        self.reports.append({"execution": record["name"], **reported})

    def waiting_run(self, execution_arn: str) -> WaitingRun | None:
        """The waiting run whose current execution is ``execution_arn``, if it waits."""
        assert self.backends is not None, "start the runtime first"
        return next((r for r in self.backends.waiting.list() if r.execution_arn == execution_arn), None)

    def wait(
        self,
        execution_arn: str,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float = 3600,
        poll_s: float = 0.2,
        until_waiting: bool = True,
    ) -> dict[str, Any]:
        """Wait for an execution to end (or to wait for its operator), reporting its record.

        Args:
            execution_arn: the execution.
            on_update: called with the record at every poll.
            timeout_s: seconds to wait at most.
            poll_s: seconds between polls.
            until_waiting: also return when the run waits in ``AskOperator`` for a reply; the
                record then has ``waiting`` (the WaitingRun as a dict).

        Returns:
            The execution record (see ``ExecutionRecorder.refresh``).

        Raises:
            TimeoutError: the execution is still running after ``timeout_s`` seconds.
        """
        assert self.recorder is not None, "start the runtime first"
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.recorder.latest(execution_arn)
            if on_update:
                on_update(record)
            if record["status"] in TERMINAL:
                return record
            if until_waiting and record.get("current_state") == "AskOperator":
                waiting = self.waiting_run(execution_arn)
                if waiting is not None and waiting.task_token:
                    return {**record, "waiting": waiting.model_dump(mode="json")}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{record['name']} still {record['status']} after {timeout_s:.0f} s")
            time.sleep(poll_s)


def _error_message(cause: str | None) -> str | None:
    """The message of a Lambda error's cause (``{"errorType", "errorMessage", ...}``), else the cause."""
    try:
        return str(json.loads(cause or "")["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return cause
