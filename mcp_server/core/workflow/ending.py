"""How an execution ended, and whether the workflow reported it itself. Pure.

The workflow reports its own endings: success, a rejected model, a cancelled run, and every
error a Task's ``Catch`` routes to ``RecordFailure`` → ``NotifyFailure`` → ``WorkflowFailed``.
Everything else ends an execution without a comment or a record: errors ``States.ALL`` cannot
catch (``States.DataLimitExceeded``, ``States.Runtime`` in a Choice, Pass or Wait state), the
execution's own timeout (``TIMED_OUT``), a stop (``ABORTED``), a failure of the failure report
itself (``ReportingFailed``), and a runtime that died. Those are reported by the execution
reporter (``agents/execution_reporter.py``), which this module tells what to say.
"""

from __future__ import annotations

from mcp_server.core.workflow.state import CaughtError

#: Fail states reached only after the workflow commented and recorded the run.
REPORTED_BY_WORKFLOW = frozenset({"ModelRejected", "RunCancelled", "WorkflowFailed"})


def reported_by_workflow(status: str, error: str | None) -> bool:
    """Whether an ended execution was already commented on and recorded by its own states.

    Args:
        status: SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
        error: the execution's error name (FAILED only).
    """
    return status == "SUCCEEDED" or (status == "FAILED" and error in REPORTED_BY_WORKFLOW)


def ending_error(status: str, error: str | None, cause: str | None, state: str | None) -> CaughtError:
    """The error to report for an execution the workflow did not report.

    Args:
        status: FAILED, TIMED_OUT or ABORTED.
        error: the execution's error name, if any.
        cause: its cause, if any.
        state: the state the execution was in when it ended.

    Returns:
        ``{Error, Cause, State}`` with a cause a reader can act on.
    """
    if status == "TIMED_OUT":
        return CaughtError(
            Error="States.Timeout",
            Cause="The execution ran longer than the workflow's TimeoutSeconds and was stopped.",
            State=state,
        )
    if status == "ABORTED":
        return CaughtError(
            Error=error or "ExecutionAborted",
            Cause=cause or "The execution was stopped before it finished.",
            State=state,
        )
    return CaughtError(
        Error=error or "States.Runtime",
        Cause=cause or "The execution failed without a cause.",
        State=state,
    )
