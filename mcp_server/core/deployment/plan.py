"""Traffic-shift plans: the challenger's share of traffic at each step of a strategy. Pure.

| strategy | steps (challenger percent) | bake between checks |
| --- | --- | --- |
| ``direct`` | 100 (the champion is replaced) | none: promoted at once |
| ``ab`` | ``ab.challenger_percent``, held | ``ab.interval_s``, then the variants are compared |
| ``canary`` | ``canary.steps`` (e.g. 10, 50, 100) | ``canary.interval_s`` after each step |
| ``linear`` | ``step_percent``, 2 x ``step_percent``, ... 100 | ``linear.interval_s`` after each step |
| ``blue_green`` | 100 at once, the old fleet kept | ``blue_green.interval_s``, then the old fleet goes |

Without a champion (the endpoint's first model) every strategy is ``direct``: there is nothing
to shift traffic from.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_server.core.spec.schema import (
    AbSpec,
    BlueGreenSpec,
    CanarySpec,
    DeploymentSpec,
    LinearSpec,
)


@dataclass(frozen=True)
class TrafficPlan:
    """How a deployment moves traffic to the challenger.

    Attributes:
        strategy: the strategy run (``direct`` when there is no champion).
        steps: the challenger's share of traffic at each step, percent, in order.
        interval_s: seconds each step bakes before its alarms are checked (0: no bake).
        keep_both: the last step keeps both variants (A/B) instead of promoting.
    """

    strategy: str
    steps: tuple[int, ...]
    interval_s: int
    keep_both: bool = False


def traffic_plan(deployment: DeploymentSpec, has_champion: bool) -> TrafficPlan:
    """Return the plan of ``deployment``'s strategy.

    Args:
        deployment: the spec's deployment section.
        has_champion: whether the endpoint already serves a champion.
    """
    strategy = deployment.strategy
    if strategy == "direct" or not has_champion:
        return TrafficPlan("direct", (100,), 0)
    if strategy == "ab":
        ab = deployment.ab or AbSpec()
        return TrafficPlan("ab", (ab.challenger_percent,), ab.interval_s, keep_both=True)
    if strategy == "canary":
        canary = deployment.canary or CanarySpec()
        return TrafficPlan("canary", tuple(canary.steps), canary.interval_s)
    if strategy == "linear":
        linear = deployment.linear or LinearSpec()
        return TrafficPlan("linear", linear_steps(linear.step_percent), linear.interval_s)
    blue_green = deployment.blue_green or BlueGreenSpec()
    return TrafficPlan("blue_green", (100,), blue_green.interval_s)


def linear_steps(step_percent: int) -> tuple[int, ...]:
    """Return ``step_percent``, twice it, ... capped at and ending with 100 (25 -> 25, 50, 75, 100)."""
    if not 1 <= step_percent <= 100:
        raise ValueError(f"step_percent must be in 1..100, got {step_percent}")
    steps = list(range(step_percent, 100, step_percent))
    return (*steps, 100)


def variant_weights(champion: str | None, challenger: str, percent: int) -> dict[str, int]:
    """Return the production variants' weights when the challenger takes ``percent`` of traffic.

    Weights are integers summing to 100, so they read as percentages; a variant at 0 is kept
    only when it is the champion (it still answers requests that name it).
    """
    if champion is None or percent >= 100:
        return {challenger: 100} if champion is None else {champion: 0, challenger: 100}
    return {champion: 100 - percent, challenger: percent}
