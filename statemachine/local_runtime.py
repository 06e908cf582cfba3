"""Local mode: the MCP server, the engine, the recorder and the webhook handler in one process.

``LocalRuntime`` is what ``mlops run`` and ``mlops serve`` start: the MCP server over streamable
HTTP on 127.0.0.1 (write enabled, as the pipeline's own deployment is), the local engine running
the ASL file with each Lambda task dispatched to its agent, the execution recorder, and the
real webhook handler pointed at the engine.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents import runtime as agent_runtime
from agents.issue_detector import DetectorConfig, IssueDetector
from mcp_server.backends.base import Backends
from mcp_server.backends.factory import build_backends
from mcp_server.core.models import WaitingRun
from mcp_server.server import RunningServer, build_server, serve_in_thread
from mcp_server.settings import Settings
from statemachine.engine import LocalEngine
from statemachine.executions import TERMINAL, ExecutionRecorder, mark_interrupted
from statemachine.functions import load_handlers, local_substitutions
from statemachine.webhooks import api_gateway_event
from statemachine.workspace import ensure_workspace, webhook_secret


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

    from mcp_server.backends.local import launcher
    from mcp_server.backends.local.mlflow_store import open_client

    quiet_libraries()
    open_client(settings)
    launcher.warm_up()
    # MLflow checks a model's pinned requirements against the installed packages once per process.
    warn_dependency_requirement_mismatches(["scikit-learn", "pandas"])


class LocalRuntime:
    """Everything a local run needs, started together and stopped together.

    Args:
        settings: the workspace settings (``allow_write`` is forced on for the pipeline's server).
        base_dir: folder that relative ``file://`` dataset paths resolve against.
        force_local_issues: use the local issue store even when a GitHub token is set
            (``mlops run`` simulates an issue that exists only locally).
    """

    def __init__(
        self,
        settings: Settings,
        base_dir: Path,
        force_local_issues: bool = False,
        operator_timeout_s: int | None = None,
    ) -> None:
        """Prepare; nothing starts until ``start`` (or ``with``)."""
        if force_local_issues:
            settings = dataclasses.replace(settings, github_token=None, github_repository=None)
        self.settings = dataclasses.replace(settings, allow_write=True)
        self.base_dir = base_dir
        self.backends: Backends | None = None
        self.mcp: RunningServer | None = None
        self.engine: LocalEngine | None = None
        self.recorder: ExecutionRecorder | None = None
        self.detector: IssueDetector | None = None
        self.secret = b""
        self.operator_timeout_s = operator_timeout_s or int(
            os.environ.get("MLOPS_OPERATOR_TIMEOUT_S", str(7 * 24 * 3600))
        )

    def start(self) -> LocalRuntime:
        """Start the MCP server, the engine and the recorder; build the webhook handler."""
        quiet_libraries()
        ensure_workspace(self.settings)
        self.secret = webhook_secret(self.settings)
        self.backends = build_backends(self.settings, self.base_dir)
        warming = threading.Thread(target=warm_up, args=(self.settings,), name="warm-up", daemon=True)
        warming.start()
        self.mcp = serve_in_thread(build_server(self.settings, self.backends))
        os.environ["MLOPS_MCP_URL"] = self.mcp.url
        agent_runtime.settings.cache_clear()
        self.engine = LocalEngine().start(load_handlers(), local_substitutions())
        records = self.settings.home / "executions"
        mark_interrupted(records, known=set())
        self.recorder = ExecutionRecorder(self.engine.client(), records).start()
        config = DetectorConfig(
            webhook_secret=self.secret,
            state_machine_arn=self.engine.state_machine_arn,
            poll_interval_s=self.settings.poll_interval_s,
            operator_timeout_s=self.operator_timeout_s,
        )
        self.detector = IssueDetector(config, self.engine.client())
        warming.join()
        self.resume_waiting_runs()
        return self

    def resume_waiting_runs(self, timeout_s: float = 60) -> list[str]:
        """Bring back every run that waited for its operator when the previous engine stopped.

        moto keeps executions in memory, so a restart loses them; the waiting runs are in the
        workspace. Each comes back as a new execution (``{run_id}-resume-{n}``) that starts in
        ``AskOperator`` with the same state, the same deadline and nothing posted twice.

        Returns:
            The ARNs of the resumed executions, once each waits again with a fresh task token.

        Raises:
            TimeoutError: a resumed run did not reach ``AskOperator`` within ``timeout_s``.
        """
        assert self.engine is not None, "start the runtime first"
        assert self.backends is not None, "start the runtime first"
        client = self.engine.client()
        resumed: dict[str, str] = {}
        for run in self.backends.waiting.list():
            try:
                if client.describe_execution(executionArn=run.execution_arn)["status"] == "RUNNING":
                    continue
            except client.exceptions.ExecutionDoesNotExist:
                pass
            remaining = datetime.fromisoformat(run.timeout_at) - datetime.now(UTC)
            config = {
                **run.state.get("config", {}),
                "operator_timeout_s": max(1, int(remaining.total_seconds())),
            }
            state = {**run.state, "resume": "AskOperator", "config": config}
            name = f"{run.run_id}-resume-{run.resumes + 1}"[:80]
            arn = client.start_execution(
                stateMachineArn=self.engine.state_machine_arn, name=name, input=json.dumps(state)
            )["executionArn"]
            self.recorder.follow(arn)  # type: ignore[union-attr]
            resumed[run.run_id] = arn
        deadline = time.monotonic() + timeout_s
        while any(self.backends.waiting.get(r).execution_arn != arn for r, arn in resumed.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"resumed runs did not wait again within {timeout_s:.0f} s: {sorted(resumed)}"
                )
            time.sleep(0.05)
        return list(resumed.values())

    def waiting_run(self, execution_arn: str) -> WaitingRun | None:
        """The waiting run whose current execution is ``execution_arn``, if it waits."""
        assert self.backends is not None, "start the runtime first"
        return next((r for r in self.backends.waiting.list() if r.execution_arn == execution_arn), None)

    def __enter__(self) -> LocalRuntime:
        """Start and return the runtime."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop everything."""
        self.stop()

    def stop(self) -> None:
        """Stop the recorder, the engine and the MCP server."""
        if self.recorder:
            self.recorder.stop()
        if self.engine:
            self.engine.stop()
        if self.mcp:
            self.mcp.stop()

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Pass an API Gateway proxy event to the webhook handler; follow any execution it starts.

        Returns:
            The handler's proxy response.
        """
        assert self.detector is not None, "start the runtime first"
        assert self.recorder is not None, "start the runtime first"
        response = self.detector.handle(event)
        body = json.loads(response["body"])
        if body.get("execution_arn"):
            self.recorder.follow(body["execution_arn"])
        return response

    def deliver(
        self, event_name: str, payload: dict[str, Any], delivery_id: str | None = None
    ) -> dict[str, Any]:
        """Sign ``payload`` with the workspace secret and deliver it to the handler.

        Returns:
            The handler's response body (decoded JSON) plus its ``statusCode``.
        """
        response = self.handle(api_gateway_event(self.secret, event_name, payload, delivery_id))
        return {"statusCode": response["statusCode"], **json.loads(response["body"])}

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
            record = self.recorder.refresh(execution_arn)
            if on_update:
                on_update(record)
            if record["status"] in TERMINAL:
                return record
            if until_waiting and record.get("current_state") == "AskOperator":
                waiting = self.waiting_run(execution_arn)
                if waiting is not None:
                    return {**record, "waiting": waiting.model_dump(mode="json")}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{record['name']} still {record['status']} after {timeout_s:.0f} s")
            time.sleep(poll_s)
