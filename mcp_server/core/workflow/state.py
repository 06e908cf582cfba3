"""The typed workflow state: the execution input, and each Task state's result. Pure.

``statemachine/mlops_workflow.asl.json`` passes the whole state to every agent and stores what
the agent returns under the Task's own ``ResultPath``:

| Task state | ResultPath | result model |
| --- | --- | --- |
| PrepareData | ``$.dataset`` | ``DatasetRef`` |
| StartTraining, DescribeTraining | ``$.training`` | ``TrainingJob`` |
| Evaluate | ``$.evaluation`` | ``EvaluationReport`` |
| Judge | ``$.verdict`` | ``Verdict`` |
| RegisterModel | ``$.model`` | ``RegisteredModel`` |
| PackageModel, CompareChampion, Deploy | ``$.deployment`` | ``DeploymentProgress`` |
| CheckAlarms, ShiftTraffic, Promote, Rollback | ``$.deployment`` | ``DeploymentProgress`` |
| RecordHistory, RecordAttempt, RecordFailure | ``$.history`` | ``HistoryStep`` |
| Notify, NotifyFailure | ``$.notification`` | ``NotificationStep`` |
| AskOperator | ``$`` | ``WorkflowInput`` (the next attempt, or the decision) |
| a Catch, or TrainingFailed | ``$.error`` | ``CaughtError`` |

``WorkflowInput`` is what the webhook starts an execution with; ``WorkflowState`` is what a
state reads: the input plus the results so far. Everything is a reference (URIs, names,
versions): Step Functions caps a state at 256 KiB.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.deployment.progress import DeploymentProgress
from mcp_server.core.judge.verdict import Verdict
from mcp_server.core.models import (
    DatasetRef,
    EvaluationReport,
    HistoryCommit,
    HistoryRecord,
    IssueRef,
    RegisteredModel,
    TrainingJob,
)

#: The Task states an execution can be resumed at (the ``Start`` choice routes ``resume``).
RESUMABLE_STATES = (
    "PrepareData",
    "StartTraining",
    "DescribeTraining",
    "Evaluate",
    "Judge",
    "RegisterModel",
    "PackageModel",
    "CompareChampion",
    "Deploy",
    "CheckAlarms",
    "ShiftTraffic",
    "Promote",
    "Rollback",
    "RecordHistory",
    "Notify",
    "RecordAttempt",
    "AskOperator",
    "RecordFailure",
    "NotifyFailure",
)

RunStatus = Literal["succeeded", "rejected", "awaiting_operator", "cancelled", "failed"]


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunConfig(_State):
    """How the workflow paces itself, set by the webhook handler.

    Attributes:
        poll_interval_s: seconds between two training-job status checks (at least 1).
        operator_timeout_s: seconds a run waits for an operator's reply.
        describe_wait_s: seconds a training-job describe may long-poll.
    """

    poll_interval_s: int = Field(30, ge=1)
    operator_timeout_s: int = Field(7 * 24 * 3600, ge=1)
    describe_wait_s: int = Field(20, ge=0)


class Trigger(_State):
    """What started the run.

    Attributes:
        kind: ``issue`` (an issue's label: its webhook delivery), or a retraining trigger
            (FR-025): ``schedule``, ``drift``, ``metric_floor``, ``data_change``, ``code_change``.
        delivery_id: the webhook delivery (issue, code_change).
        by: the login who labelled or opened the issue, or pushed; ``monitor`` for the monitor.
        reason: why the trigger fired (a retraining trigger).
        endpoint_name: the endpoint whose monitoring fired it.
        monitoring_job: the monitoring job whose findings fired it.
        previous_version: the champion's semantic version when the retrain started.
        previous_spec_hash: the spec hash of the run that deployed it.
        previous_data_version: the dataset version it was trained on.
        feedback_uri: labelled captured rows to add to the data (``retraining.feedback``): a
            monitoring job's ``feedback.parquet``; feedback_rows: how many it holds.
    """

    kind: Literal["issue", "schedule", "drift", "metric_floor", "data_change", "code_change"] = "issue"
    delivery_id: str = Field("", max_length=200)
    by: str = Field("", description="the login who labelled or opened the issue")
    reason: str = Field("", max_length=2000)
    endpoint_name: str = ""
    monitoring_job: str = ""
    previous_version: str = ""
    previous_spec_hash: str = ""
    previous_data_version: str = ""
    feedback_uri: str = Field("", max_length=2048)
    feedback_rows: int = Field(0, ge=0)


class OperatorDecision(_State):
    """An operator's reply to a run waiting in AskOperator (or the wait's timeout)."""

    action: Literal["retrain", "approve", "cancel", "timeout", "deploy"]
    by: str = ""
    at: str = ""
    comment_id: int | None = None
    patch: dict[str, Any] | None = Field(None, description="/retrain: the merge patch applied")
    diff: str | None = Field(None, description="/retrain: the spec diff shown back")


class CaughtError(_State):
    """An error the workflow caught: its name and cause, as Step Functions' Catch writes them.

    ``State`` is the Task state that failed (set by the ``...Failed`` Pass states).
    """

    Error: str
    Cause: str = ""
    State: str | None = None


class WorkflowInput(_State):
    """The execution input: which issue, which spec, which attempt of which run.

    Attributes:
        issue: the issue the run belongs to.
        spec: the validated, normalised TrainingSpec as JSON.
        spec_hash: ``TrainingSpec.spec_hash()`` of ``spec``.
        attempt: 1-based attempt of this run (``/retrain`` adds one).
        run_id: the run's first execution name; stable across attempts and resumes.
        run_started_at: when the run began (ISO-8601 UTC).
        trigger: what started the run.
        config: pacing.
        attempts: the records of this run's earlier attempts, oldest first.
        operator: the operator's decision that led here, if any.
        resume: a Task state to re-enter at once (a resumed execution; see ``RESUMABLE_STATES``).
    """

    issue: IssueRef
    spec: dict[str, Any]
    spec_hash: str
    attempt: int = Field(1, ge=1)
    run_id: str = Field(min_length=1, max_length=80)
    run_started_at: str
    trigger: Trigger = Trigger()
    config: RunConfig = RunConfig()
    attempts: list[HistoryRecord] = Field(default_factory=list)
    operator: OperatorDecision | None = None
    resume: str | None = None


class HistoryStep(HistoryCommit):
    """What RecordHistory, RecordAttempt and RecordFailure leave in ``$.history``.

    Attributes:
        status: the recorded run status (the ``Outcome`` choice routes on it).
        record_id: the record's id (``{run_id}-a{attempt}``).
        finished_at: the record's finish time, reused when the record is rebuilt.
    """

    status: RunStatus
    record_id: str
    finished_at: str


class NotificationStep(_State):
    """What Notify and NotifyFailure leave in ``$.notification``: where the comment went."""

    comment_id: int
    comment_url: str = ""
    message_id: str = ""


class WorkflowState(WorkflowInput):
    """What a state reads: the execution input plus every result so far (see the module table)."""

    dataset: DatasetRef | None = None
    training: TrainingJob | None = None
    evaluation: EvaluationReport | None = None
    verdict: Verdict | None = None
    model: RegisteredModel | None = None
    history: HistoryStep | None = None
    notification: NotificationStep | None = None
    deployment: DeploymentProgress | None = None
    error: CaughtError | None = None
    recording_error: CaughtError | None = Field(
        None, description="why RecordFailure or NotifyFailure itself failed (the original error is kept)"
    )


class AgentEvent(_State):
    """The payload every Task state sends its agent (``Parameters`` in the ASL).

    Attributes:
        state: the workflow state (``$``).
        execution: ``$$.Execution.Name``.
        state_name: ``$$.State.Name``.
        state_entered: ``$$.State.EnteredTime`` (ISO-8601): the same on a retry of the state.
        action: which of an agent's operations (``start``/``describe`` for training).
        task_token: ``$$.Task.Token`` of a ``.waitForTaskToken`` task.
        execution_arn: ``$$.Execution.Id``.
    """

    state: WorkflowState
    execution: str
    state_name: str
    state_entered: str
    action: str | None = None
    task_token: str | None = None
    execution_arn: str | None = None
