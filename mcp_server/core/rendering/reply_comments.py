"""The Markdown of the replies to operator commands, and of a run's status comment. Pure.

Replies to ``/retrain`` (accepted, or its patch errors), ``/approve``, ``/cancel``, ``/status``
and to commands that cannot apply (nobody waits, or the author may not steer runs); the one
status comment per run that is edited in place; the comment that ends an unanswered wait. Every
comment starts with a hidden ``<!-- issue-mlops:KIND -->`` marker. Re-exported by
``core.rendering.comments``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcp_server.core.rendering.markdown_text import (
    cell,
    errors_table,
    fence,
    human_duration,
    marker,
)
from mcp_server.core.spec.errors import SpecError


def retrain_accepted_comment(login: str, attempt: int, diff: str) -> str:
    """Render the reply to an accepted ``/retrain``: the spec diff and the new attempt.

    Args:
        login: who asked.
        attempt: the attempt that starts now (1-based).
        diff: the unified diff of the spec (``operator_commands.spec_diff``); ``""`` if unchanged.
    """
    shown = diff or "(the patch left the spec unchanged)"
    outer = fence(shown)
    return "\n".join(
        [
            marker("retrain-accepted"),
            f"### 🔁 @{login}'s patch was accepted: attempt {attempt} is starting",
            "",
            "The spec changed as follows:",
            "",
            f"{outer}diff",
            shown,
            outer,
        ]
    )


def patch_errors_comment(errors: Iterable[SpecError], timeout_at: str | None = None) -> str:
    """Render the reply to a ``/retrain`` whose patch (or the patched spec) is invalid.

    Args:
        errors: every error, each with path, value and message.
        timeout_at: until when the run still waits, ISO-8601 UTC (optional).
    """
    errors = list(errors)
    until = f" until {timeout_at} (UTC)" if timeout_at else ""
    return "\n".join(
        [
            marker("patch-errors"),
            f"### ❌ The /retrain patch has {len(errors)} error{'s' if len(errors) != 1 else ''}; "
            "nothing was changed",
            "",
            *errors_table(errors),
            "",
            f"The run keeps waiting{until}: reply again with a corrected `/retrain` and YAML patch, "
            "or `/approve`, `/cancel`, `/status`.",
        ]
    )


def not_waiting_comment(login: str, command: str) -> str:
    """Render the reply to a command when no run on the issue waits for an operator."""
    shown = command if command.startswith("/") else f"/{command}"
    return "\n".join(
        [
            marker("not-waiting"),
            f"### ℹ️ @{login}, `{shown}` was not applied: no run on this issue is waiting for a decision",
            "",
            "Commands steer a run only after it missed its thresholds and asked for a decision. "
            "To start a new run, remove and re-add the `mlops:train` label.",
        ]
    )


def unauthorised_command_comment(login: str, association: str, allowed: Iterable[str]) -> str:
    """Render the reply to a command from someone who may not steer runs."""
    return "\n".join(
        [
            marker("unauthorised-command"),
            f"### 🔒 @{login}, this command was not applied",
            "",
            f"Runs can be steered only by repository members whose association is one of "
            f"{', '.join(sorted(allowed))}; yours is `{association}`. Nothing changed.",
        ]
    )


def cancelled_comment(login: str) -> str:
    """Render the reply to ``/cancel``: the run stops and nothing is registered."""
    return "\n".join(
        [
            marker("cancelled"),
            f"### 🛑 @{login} cancelled the run",
            "",
            "No model is registered; the history record says who cancelled it.",
        ]
    )


def rollback_done_comment(login: str, endpoint: str, version: str, url: str) -> str:
    """Render the reply to ``/rollback``: the endpoint serves ``version`` at 100 % again."""
    where = f" at {url}" if url else ""
    return "\n".join(
        [
            marker("rolled-back"),
            f"### ↩️ @{login} rolled endpoint `{endpoint}` back",
            "",
            f"It serves version `{version}` to 100% of traffic{where}. The endpoint's deployment "
            f"history records the rollback and who asked for it (`mlops endpoints {endpoint}`).",
        ]
    )


def rollback_refused_comment(login: str, reason: str) -> str:
    """Render the reply to a ``/rollback`` that could not be applied (nothing changed)."""
    return "\n".join(
        [
            marker("rollback-refused"),
            f"### ℹ️ @{login}, `/rollback` was not applied",
            "",
            f"{reason}. The endpoint keeps serving what it served.",
            "",
            "Reply `/rollback` to return to the previous champion, or `/rollback VERSION` "
            "(e.g. `/rollback 1.2.0`) for a version the endpoint served.",
        ]
    )


def deploy_started_comment(login: str, version: str, endpoint: str) -> str:
    """Render the reply to ``/deploy``: the held-back challenger is being deployed."""
    return "\n".join(
        [
            marker("deploy-started"),
            f"### 🚀 @{login} asked to deploy `{version}` to `{endpoint}`",
            "",
            "The champion/challenger gate held it back; it now goes through the deployment strategy "
            "(traffic steps and alarms) as usual. A comment follows with the outcome, and the run's "
            "record says who asked.",
        ]
    )


def deploy_refused_comment(login: str, reason: str) -> str:
    """Render the reply to a ``/deploy`` that has nothing to deploy."""
    return "\n".join(
        [
            marker("deploy-refused"),
            f"### ℹ️ @{login}, `/deploy` was not applied",
            "",
            f"{reason}. `/deploy` deploys a model that passed the judge but was held back because the "
            "current champion scored better.",
        ]
    )


def approved_comment(login: str, attempt: int) -> str:
    """Render the reply to ``/approve``: attempt ``attempt``'s model is registered as it is."""
    return "\n".join(
        [
            marker("approved"),
            f"### ✅ @{login} approved attempt {attempt}",
            "",
            "Its model is being registered as it is, although it missed a threshold; "
            "the history record says who approved it.",
        ]
    )


def timeout_comment(timeout_at: str) -> str:
    """Render the comment that ends a wait nobody answered (``timeout_at``: ISO-8601 UTC)."""
    when = f" by {timeout_at} (UTC)" if timeout_at else " in time"
    return "\n".join(
        [
            marker("timeout"),
            f"### ⌛ The wait timed out: no decision arrived{when}",
            "",
            "The run ended without a new attempt and no model was registered. To try again, "
            "remove and re-add the `mlops:train` label.",
        ]
    )


def status_comment(
    execution: str,
    state: str,
    attempt: int,
    max_attempts: int,
    elapsed_s: float,
    issue_number: int,
    updated_at: str,
    waiting: bool,
    final: bool = False,
) -> str:
    """Render a run's one status comment, edited in place as the run moves on.

    Args:
        execution: the run's id (stable across attempts); in the marker
            ``<!-- issue-mlops:status:{execution} -->``.
        state: what the run is doing, e.g. ``training`` or ``waiting for a reply on the issue``.
        attempt: the current attempt (1-based).
        max_attempts: the retry budget.
        elapsed_s: seconds since the run started.
        issue_number: the issue the run belongs to.
        updated_at: when this status was written, ISO-8601 UTC.
        waiting: whether the run waits for an operator's reply.
        final: whether the run has ended: the icon says how (✅ succeeded, ❌ rejected, 🛑
            cancelled, ⚠️ otherwise) instead of ⏳, and the footer says it is the last update.
    """
    icon = "⏸️" if waiting else "⏳"
    if final:
        icon = next((i for word, i in _FINAL_ICONS.items() if word in state), "⚠️")
    lines = [
        marker(f"status:{execution}"),
        f"### {icon} Run `{execution}` on issue #{issue_number}: {state}",
        "",
        "| | |",
        "| --- | --- |",
        f"| State | {cell(state)} |",
        f"| Attempt | {attempt} of {max_attempts} |",
        f"| Elapsed | {human_duration(elapsed_s)} |",
        f"| Updated | {updated_at} |",
    ]
    if waiting:
        lines += ["", "Waiting for a reply: `/retrain` with a YAML patch, `/approve`, `/cancel`, `/status`."]
    footer = "This run has ended." if final else "This comment is updated in place while the run lasts."
    lines += ["", f"<sub>{footer}</sub>"]
    return "\n".join(lines)


#: The icon of an ended run's status comment, by a word of its state.
_FINAL_ICONS = {"succeeded": "✅", "rejected": "❌", "cancelled": "🛑", "failed": "⚠️"}


def status_reply(
    run_id: str | None,
    state: str,
    attempt: int | None,
    max_attempts: int | None,
    waiting_since: str | None,
    timeout_at: str | None,
) -> str:
    """Render the reply to ``/status``: where the run is, and since/until when it waits.

    Args:
        run_id: the run's id, ``None`` when no run is waiting on the issue.
        state: what the run is doing (or why there is nothing to report).
        attempt: the current attempt, if known.
        max_attempts: the retry budget, if known.
        waiting_since: when the wait began, ISO-8601 UTC, if waiting.
        timeout_at: when the wait ends, ISO-8601 UTC, if waiting.
    """
    head = f"### ℹ️ Run `{run_id}`: {state}" if run_id else f"### ℹ️ {state[:1].upper()}{state[1:]}"
    lines = [marker("status-reply"), head]
    facts = []
    if attempt is not None:
        facts.append(f"- Attempt {attempt}" + (f" of {max_attempts}" if max_attempts else ""))
    if waiting_since:
        facts.append(f"- Waiting since: {waiting_since} (UTC)")
    if timeout_at:
        facts.append(f"- Waits until: {timeout_at} (UTC)")
    if facts:
        lines += ["", *facts]
    if waiting_since:
        lines += ["", "Reply `/retrain` with a YAML patch, `/approve` or `/cancel`."]
    return "\n".join(lines)
