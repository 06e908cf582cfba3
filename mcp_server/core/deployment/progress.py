"""A deployment's progress through its traffic plan: the workflow's ``$.deployment``. Pure.

The ASL loop reads ``status`` after each deployment Task state:

| status | set by | next state |
| --- | --- | --- |
| ``packaged`` | PackageModel | CompareChampion |
| ``held`` | CompareChampion (worse than the champion) | RecordHistory |
| ``compared`` | CompareChampion (may deploy) | Deploy |
| ``baking`` | Deploy, ShiftTraffic | WaitForBake, then CheckAlarms |
| ``shifting`` | CheckAlarms (step passed, more steps) | ShiftTraffic |
| ``promote`` | CheckAlarms (last step passed) | Promote |
| ``rollback`` | CheckAlarms (a limit crossed) | Rollback |
| ``promoted``, ``rolled_back``, ``ab_running`` | Deploy, Promote, Rollback, CheckAlarms | RecordHistory |
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.deployment.decisions import AlarmCheck, ChampionComparison
from mcp_server.core.deployment.metrics import VariantMetrics
from mcp_server.core.deployment.models import ModelPackageFiles

DeploymentStatus = Literal[
    "packaged",
    "held",
    "compared",
    "baking",
    "shifting",
    "promote",
    "rollback",
    "promoted",
    "rolled_back",
    "ab_running",
]


class StepRecord(BaseModel):
    """One traffic step as CheckAlarms judged it.

    Attributes:
        percent: the challenger's share of traffic during the step, percent.
        breached: whether a ``rollback_on`` limit was crossed.
        reasons: the limits crossed, with the measured values.
        challenger, champion: each variant's metrics over the step's window.
        validation_requests: requests replayed from the test split during the check.
    """

    model_config = ConfigDict(extra="forbid")

    percent: int
    breached: bool
    reasons: list[str] = Field(default_factory=list)
    challenger: VariantMetrics
    champion: VariantMetrics | None = None
    validation_requests: int = 0


class DeploymentProgress(BaseModel):
    """Where a deployment stands (see the module's table).

    Attributes:
        endpoint_name, target, url: the endpoint.
        strategy: the plan's strategy (``direct`` for an endpoint's first model).
        steps: the challenger's share at each step, percent; ``step_index`` the current one.
        interval_s: seconds each step bakes.
        keep_both: A/B: both variants keep serving after the last step.
        champion, challenger: the variant names (champion None on a new endpoint).
        challenger_version: the registry version deployed.
        status: see the table.
        step_started_at: when the current step began, seconds since the epoch.
        comparison: the champion/challenger gate.
        package: the version's packaging files.
        steps_done: each judged step.
        reason: why it was held, rolled back or promoted.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint_name: str
    target: Literal["local", "sagemaker_endpoint"]
    url: str = ""
    strategy: str = "direct"
    steps: list[int] = Field(default_factory=lambda: [100])
    step_index: int = 0
    interval_s: int = 0
    keep_both: bool = False
    champion: str | None = None
    challenger: str
    challenger_version: str = ""
    status: DeploymentStatus
    step_started_at: float = 0.0
    comparison: ChampionComparison | None = None
    package: ModelPackageFiles | None = None
    steps_done: list[StepRecord] = Field(default_factory=list, max_length=100)
    reason: str = ""

    @property
    def percent(self) -> int:
        """The challenger's share of traffic in the current step, percent."""
        return self.steps[self.step_index]


def after_check(
    progress: DeploymentProgress,
    check: AlarmCheck,
    champion: VariantMetrics | None = None,
    validation_requests: int = 0,
) -> DeploymentProgress:
    """The progress once CheckAlarms has judged the current step.

    A crossed limit rolls back (FR-020); a passed step moves to the next one, or, after the
    last, promotes the challenger (or, for A/B, leaves both serving with their comparison).
    """
    record = StepRecord(
        percent=progress.percent,
        breached=check.breached,
        reasons=check.reasons,
        challenger=check.metrics,
        champion=champion,
        validation_requests=validation_requests,
    )
    done = [*progress.steps_done, record]
    if check.breached:
        reason = f"rolled back at {progress.percent}% of traffic: " + "; ".join(check.reasons)
        return progress.model_copy(update={"status": "rollback", "steps_done": done, "reason": reason})
    if progress.step_index + 1 < len(progress.steps):
        return progress.model_copy(update={"status": "shifting", "steps_done": done})
    if progress.keep_both:
        return progress.model_copy(
            update={"status": "ab_running", "steps_done": done, "reason": ab_summary(record)}
        )
    return progress.model_copy(update={"status": "promote", "steps_done": done})


def ab_summary(record: StepRecord) -> str:
    """One sentence comparing the A/B variants' error rates and p95 latencies over the window."""

    def describe(metrics: VariantMetrics | None) -> str:
        if metrics is None or not metrics.requests:
            return "no requests"
        p95 = f"{metrics.p95_ms:.1f} ms" if metrics.p95_ms is not None else "n/a"
        return f"{metrics.requests} requests, error rate {metrics.error_rate:.2%}, p95 {p95}"

    return (
        f"A/B at {record.percent}% to the challenger: challenger {describe(record.challenger)}; "
        f"champion {describe(record.champion)}"
    )
