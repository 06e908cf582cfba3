"""Rich rendering of executions, run results and comments for the ``mlops`` CLI."""

from __future__ import annotations

import shlex
from typing import Any

import yaml
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from mcp_server.core.judge.verdict import Verdict
from mcp_server.core.rendering.loop_comments import retrain_patch
from statemachine.executions import state_durations


def final_state(record: dict[str, Any]) -> dict[str, Any]:
    """The richest workflow state of an execution: its output, else the last state output."""
    if isinstance(record.get("output"), dict):
        return record["output"]
    for state in reversed(record.get("states", [])):
        if isinstance(state.get("output"), dict):
            return state["output"]
    return record.get("input") if isinstance(record.get("input"), dict) else {}


def states_table(record: dict[str, Any]) -> Table:
    """A table of each state with its visits and total duration in seconds."""
    table = Table(title="States", show_edge=False)
    table.add_column("state")
    table.add_column("visits", justify="right")
    table.add_column("seconds", justify="right")
    for name, visits, seconds in state_durations(record.get("states", [])):
        table.add_row(name, str(visits), f"{seconds:.2f}")
    return table


def metrics_table(state: dict[str, Any]) -> Table | None:
    """Metrics against thresholds, with the judge's check of each thresholded metric."""
    evaluation = state.get("evaluation")
    if not evaluation:
        return None
    checks = {c["metric"]: c for c in (state.get("verdict") or {}).get("checks", [])}
    table = Table(title="Metrics on the test split", show_edge=False)
    for column in ("metric", "value", "threshold", "result"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for name, value in evaluation["metrics"].items():
        check = checks.get(name)
        threshold = (
            f"{'≥' if check['direction'] == 'maximize' else '≤'} {check['threshold']:g}" if check else ""
        )
        result = ("[green]pass[/]" if check["passed"] else "[red]fail[/]") if check else ""
        table.add_row(name, f"{value:.4f}", threshold, result)
    return table


def run_summary(console: Console, record: dict[str, Any]) -> None:
    """Print where a run landed: execution, states, metrics, verdict, model, record, comment."""
    state = final_state(record)
    colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(record["status"], "yellow")
    console.print(f"\n[bold]Execution[/] {record['name']}  [{colour}]{record['status']}[/]")
    if record.get("error") and record["status"] != "SUCCEEDED":
        console.print(f"[bold]Ended with[/] {record['error']}: {record.get('cause') or ''}")
    console.print(states_table(record))
    table = metrics_table(state)
    if table is not None:
        console.print(table)
    verdict = state.get("verdict")
    if verdict:
        console.print(f"[bold]Verdict[/] {verdict['verdict']}: " + "; ".join(verdict.get("reasons", [])))
    model = state.get("model")
    if model:
        console.print(
            f"[bold]Registered model[/] {model['name']} version {model['version']} "
            f"(semantic {model['semantic_version']}, aliases {', '.join(model.get('aliases', []))})"
        )
    history = state.get("history")
    if history and history.get("commit_sha"):
        console.print(f"[bold]History record[/] {history['repository']}/{history['path']}", soft_wrap=True)
        console.print(f"[bold]Commit[/] {history['commit_sha']}", soft_wrap=True)
    notification = state.get("notification")
    if notification:
        console.print(
            f"[bold]Comment posted[/] {notification.get('comment_url') or notification['comment_id']}"
        )


def comments_panel(issue: dict[str, Any], comments: list[dict[str, Any]]) -> Panel:
    """The issue's comments rendered as Markdown, oldest first."""
    parts: list[Any] = []
    for comment in comments:
        parts.append(f"[dim]#{comment['id']} {comment.get('author', '')} {comment.get('created_at', '')}[/]")
        parts.append(Markdown(comment["body"]))
    return Panel(
        Group(*parts) if parts else "no comments",
        title=f"Issue #{issue['number']}: {escape(issue.get('title', ''))}",
    )


def retrain_reply(record: dict[str, Any]) -> str:
    """The ``/retrain`` reply the judge suggests for a waiting run: the command and its YAML patch.

    Uses the same patch as the waiting comment (``retrain_patch``): the judge's suggested
    changes, else the current hyperparameters to edit.
    """
    state = final_state(record)
    verdict, spec = state.get("verdict"), state.get("spec") or {}
    if not verdict:
        return "/retrain"
    patch, _ = retrain_patch(Verdict.model_validate(verdict), spec)
    text = yaml.safe_dump(patch, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"/retrain\n{text.rstrip()}"


def waiting_summary(console: Console, record: dict[str, Any], issue_number: int) -> None:
    """Print how to answer a run that waits for its operator."""
    waiting = record["waiting"]
    console.print(
        f"[bold yellow]Waiting[/] for a reply on issue #{issue_number} (attempt {waiting['attempt']} of "
        f"{waiting['max_attempts']}, until {waiting['timeout_at']}). Reply from the terminal with:",
        soft_wrap=True,
    )
    console.print(f"  mlops comment {issue_number} {shlex.quote(retrain_reply(record))}", markup=False)
    console.print(
        f"  mlops comment {issue_number} /approve    |    mlops comment {issue_number} /cancel", markup=False
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def endpoints_table(found: list[Any], metrics: dict[str, Any]) -> Table:
    """One row per production variant: endpoint, status, variant, version, weight, RPS, p95, 5xx rate, URL.

    Args:
        found: ``EndpointDescription``s.
        metrics: endpoint name -> its ``EndpointMetrics`` (None when it is not serving).
    """
    table = Table(title="Endpoints (metrics since each server started)")
    for column in ("endpoint", "status", "variant", "version"):
        table.add_column(column, no_wrap=True)
    for column in ("weight %", "RPS", "p95 ms", "5xx rate"):
        table.add_column(column, justify="right")
    table.add_column("url", overflow="fold")
    for endpoint in found:
        live = metrics.get(endpoint.name)
        for index, variant in enumerate(endpoint.variants or [None]):
            measured = live.variants.get(variant.name) if live is not None and variant is not None else None
            table.add_row(
                endpoint.name if index == 0 else "",
                endpoint.status if index == 0 else "",
                variant.name if variant else "—",
                (variant.model.semantic_version or variant.model.version) if variant else "—",
                f"{variant.weight:g}" if variant else "—",
                "—" if measured is None or measured.rps is None else f"{measured.rps:.2f}",
                _ms(measured.p95_ms) if measured else "—",
                _percent(measured.error_rate) if measured and measured.requests else "—",
                endpoint.url if index == 0 else "",
            )
    return table


def endpoint_summary(console: Console, endpoint: Any, metrics: Any) -> None:
    """Print one endpoint: status, URL, variants with live metrics, its recent deployments."""
    console.print(
        f"[bold]{escape(endpoint.name)}[/] ({endpoint.target}) {endpoint.status}"
        + (f" at {endpoint.url}" if endpoint.url else "")
        + f", model {escape(endpoint.model_name)}, data capture {endpoint.data_capture_percent:g}%"
    )
    if endpoint.failure_reason:
        console.print(f"[red]{escape(endpoint.failure_reason)}[/]")
    variants = Table(title="Production variants")
    for column in (
        "variant",
        "version",
        "weight %",
        "requests",
        "4xx",
        "5xx",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "RPS",
    ):
        variants.add_column(column)
    for variant in endpoint.variants:
        measured = metrics.variants.get(variant.name) if metrics is not None else None
        variants.add_row(
            variant.name,
            variant.model.semantic_version or variant.model.version,
            f"{variant.weight:g}",
            *(
                [str(measured.requests), str(measured.errors_4xx), str(measured.errors_5xx)]
                + [_ms(measured.p50_ms), _ms(measured.p95_ms), _ms(measured.p99_ms)]
                + ["—" if measured.rps is None else f"{measured.rps:.2f}"]
                if measured
                else ["—"] * 7
            ),
        )
    console.print(variants)
    history = Table(title="Recent deployments")
    for column in ("at", "action", "weights", "by", "detail"):
        history.add_column(column, overflow="fold")
    for event in endpoint.history[-10:]:
        weights = ", ".join(f"{name} {weight:g}%" for name, weight in event.weights.items())
        history.add_row(event.at[:19], event.action, weights, escape(event.by), escape(event.detail))
    console.print(history)
