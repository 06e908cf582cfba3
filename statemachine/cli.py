"""The ``mlops`` command line: local mode of the issue-driven pipeline.

``mlops run ISSUE.md`` turns a Markdown issue into a signed ``issues.labeled`` webhook, sends it
through the real handler, runs the workflow with the local engine and prints where everything
landed. ``mlops serve`` receives real webhooks. ``validate`` and ``parse-issue`` check issue
bodies offline; ``status`` and ``history`` read the workspace; ``resume`` takes over the
executions of a runtime that died.

A user's mistake (an unknown issue or execution, a body that is not from the form) prints one
line naming the fix and exits 1; an unexpected error prints one line and the path of a log
holding its traceback, and exits 2 (``main``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mcp_server.core.spec.bounds import shorten
from mcp_server.core.spec.issue_form import extract_spec, parse_issue_form
from mcp_server.core.spec.schema import SpecValidationError, validate_spec
from mcp_server.errors import NotFoundError
from mcp_server.settings import Settings
from statemachine.workspace import local_issue_store, registered_environments, runtime_alive

app = typer.Typer(
    help="issue-mlops: train, judge and register models from GitHub issues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)
DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "issue_templates" / "train.yml"


class UserMistake(Exception):
    """A mistake the user can fix: ``main`` prints its message and fix on one line, exit code 1."""


def _spec_errors(err: SpecValidationError, source: Path) -> None:
    console.print(f"[red]{len(err.errors)} error(s)[/] in {escape(str(source))}:", highlight=False)
    for error in err.errors:
        console.print(f"  • {error}", highlight=False, markup=False)


@app.command("parse-issue")
def parse_issue(
    body: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="issue body (Markdown)")],
    template: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="issue form (YAML)")
    ] = DEFAULT_TEMPLATE,
) -> None:
    """Print the issue form's fields as JSON (field id -> value); exit 1 on a body not from the form."""
    try:
        fields = parse_issue_form(body.read_text(), yaml.safe_load(template.read_text()))
    except SpecValidationError as err:
        _spec_errors(err, body)
        raise typer.Exit(1) from err
    print(json.dumps(fields, indent=2))


@app.command()
def validate(
    body: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="issue body (Markdown)")],
    template: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="issue form (YAML)")
    ] = DEFAULT_TEMPLATE,
) -> None:
    """Print the normalised spec as YAML, or every error (field path, value, allowed) and exit 1."""
    try:
        spec = validate_spec(
            extract_spec(body.read_text(), yaml.safe_load(template.read_text())), registered_environments
        )
    except SpecValidationError as err:
        _spec_errors(err, body)
        raise typer.Exit(1) from err
    print(f"# spec hash {spec.spec_hash()}")
    print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), end="")


@app.command()
def run(
    issue: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="issue body (Markdown)")],
    author: Annotated[str, typer.Option("--as", help="the issue's author login")] = "local-user",
    association: Annotated[str, typer.Option(help="author_association sent in the webhook")] = "OWNER",
    timeout: Annotated[float, typer.Option(help="seconds to wait for the run")] = 3600,
) -> None:
    """Run an issue end to end locally: webhook, workflow, history commit and comment."""
    from statemachine.local_runtime import LocalRuntime
    from statemachine.webhooks import issue_payload, read_issue_file

    title, body = read_issue_file(issue)
    settings = Settings.from_env()
    with console.status("starting the MCP server and the engine"):
        runtime = LocalRuntime(settings, Path.cwd(), force_local_issues=True, command="mlops run").start()
    try:
        store: Any = runtime.backends.issues  # type: ignore[union-attr]
        created = store.create_issue(title=title, body=body, author=author, labels=["mlops:train"])
        number = created["number"] if isinstance(created, dict) else created.number
        payload = issue_payload(number, title, body, author, association, html_url=f"local://issues/{number}")
        started = time.perf_counter()
        response = runtime.deliver("issues", payload)
        console.print(
            f"Issue #{number} [bold]{escape(title)}[/]: webhook answered {response['statusCode']} "
            f"{response['status']} in {1000 * (time.perf_counter() - started):.0f} ms"
        )
        if response["status"] != "started":
            _print_comments(store, number)
            raise typer.Exit(1)
        record = _follow(runtime, response["execution_arn"], timeout)
        _report(record, number, started, store)
    finally:
        runtime.stop()


def _report(record: dict[str, Any], number: int, started: float, store: Any) -> None:
    """Print the run's summary; exit 0 when it succeeded or waits for a reply, 1 otherwise."""
    from statemachine.console import comments_panel, final_state, run_summary, waiting_summary

    if record.get("waiting"):
        newest = store.list_comments(number)[-1:]
        issue = store.get_issue(number).model_dump()
        console.print(comments_panel(issue, [c.model_dump() for c in newest]))
        waiting_summary(console, record, number)
        return
    run_summary(console, record)
    notification = final_state(record).get("notification") or {}
    if notification.get("comment_id"):
        _print_comments(store, number, since=int(notification["comment_id"]) - 1, only=1)
    console.print(f"Wall time: {time.perf_counter() - started:.1f} s")
    if record["status"] != "SUCCEEDED":
        raise typer.Exit(1)


@app.command()
def comment(
    issue: Annotated[int, typer.Argument(help="the local issue number")],
    text: Annotated[str, typer.Argument(help="the comment, e.g. '/retrain' and a YAML patch")],
    author: Annotated[str, typer.Option("--as", help="the commenter's login")] = "local-user",
    association: Annotated[str, typer.Option(help="author_association sent in the webhook")] = "OWNER",
    timeout: Annotated[float, typer.Option(help="seconds to wait for the run")] = 3600,
) -> None:
    """Comment on a local issue through the signed issue_comment webhook, and follow the run."""
    from statemachine.local_runtime import LocalRuntime
    from statemachine.webhooks import comment_payload

    settings = Settings.from_env()
    _known_issue(settings, issue)
    with console.status("starting the MCP server and the engine, resuming waiting runs"):
        runtime = LocalRuntime(settings, Path.cwd(), force_local_issues=True, command="mlops comment").start()
    try:
        store: Any = runtime.backends.issues  # type: ignore[union-attr]
        local_issue = store.get_issue(issue)
        waiting = runtime.backends.waiting.list(issue)  # type: ignore[union-attr]
        posted = store.post_comment(issue, text, author=author)
        payload = comment_payload(
            issue, local_issue.title, posted.id, text, author, posted.created_at, association
        )
        started = time.perf_counter()
        response = runtime.deliver("issue_comment", payload)
        console.print(
            f"Comment #{posted.id} on issue #{issue}: webhook answered "
            f"{response['statusCode']} {response['status']}"
        )
        if response["status"] == "deploying" and response.get("execution_arn"):  # /deploy: a new execution
            _print_comments(store, issue, since=posted.id)
            _report(_follow(runtime, response["execution_arn"], timeout), issue, started, store)
            return
        if response["status"] != "resumed" or not waiting:
            _print_comments(store, issue, since=posted.id)
            raise typer.Exit(0 if response["statusCode"] == 200 else 1)
        record = _follow(runtime, waiting[-1].execution_arn, timeout)
        _report(record, issue, started, store)
    finally:
        runtime.stop()


def _follow(runtime: Any, execution_arn: str, timeout: float) -> dict[str, Any]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def update(record: dict[str, Any]) -> None:
            progress.update(
                task, description=f"{record['name']}: {record.get('current_state') or record['status']}"
            )

        return runtime.wait(execution_arn, on_update=update, timeout_s=timeout)


def _print_comments(store: Any, number: int, since: int = 0, only: int | None = None) -> None:
    from statemachine.console import comments_panel

    issue = store.get_issue(number)
    issue = issue if isinstance(issue, dict) else issue.model_dump()
    comments = [c.model_dump() for c in store.list_comments(number) if c.id > since][:only]
    console.print(comments_panel(issue, comments))


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="webhook port on 127.0.0.1")] = 8080,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
) -> None:
    """Serve the webhook (POST /webhook) with the MCP server and the engine, until Ctrl-C."""
    import uvicorn

    from statemachine.local_runtime import LocalRuntime
    from statemachine.webhook_server import webhook_app

    runtime = LocalRuntime(
        Settings.from_env(), Path.cwd(), serve_deliveries=True, command="mlops serve"
    ).start()
    console.print(f"MCP server: {runtime.mcp.url}")  # type: ignore[union-attr]
    if runtime.settings.backend == "local":
        for endpoint in _endpoint_backend(runtime.settings).restart_endpoints():
            state = endpoint.url if endpoint.status == "InService" else f"failed: {endpoint.failure_reason}"
            console.print(f"Endpoint {endpoint.name} restarted: {escape(state)}")
    console.print(
        f"Webhook:    http://{host}:{port}/webhook (secret in MLOPS_WEBHOOK_SECRET or "
        f"{runtime.settings.home / 'webhook_secret'})"
    )
    scheduler = runtime.start_scheduler()
    for schedule in runtime.backends.monitoring.list_monitoring_schedules():  # type: ignore[union-attr]
        console.print(
            f"Monitoring {schedule.endpoint_name}: {schedule.check_expression or 'retraining only'}"
        )
    try:
        uvicorn.run(webhook_app(runtime), host=host, port=port, log_level="warning")
    finally:
        scheduler.stop()
        runtime.stop()


def _known_issue(settings: Settings, number: int) -> None:
    """Raise ``UserMistake`` unless the workspace's local issue store has issue ``number``."""
    try:
        local_issue_store(settings).get_issue(number)
    except NotFoundError as err:
        raise UserMistake(
            f"there is no local issue #{number} in {settings.home / 'issues'}; "
            "`mlops status` lists the issues' executions, `mlops run ISSUE.md` creates one"
        ) from err


def _records(settings: Settings) -> list[dict[str, Any]]:
    """The workspace's execution records, oldest first (unreadable ones skipped)."""
    from statemachine.executions import read_record

    paths = sorted((settings.home / "executions").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return [r for r in (read_record(p) for p in paths) if r is not None and "name" in r]


def resolve_execution(records: list[dict[str, Any]], name_or_prefix: str) -> dict[str, Any]:
    """The record named ``name_or_prefix``, or the only one whose name starts with it.

    Raises:
        UserMistake: no execution has that name or prefix, or several start with it.
    """
    exact = [r for r in records if r["name"] == name_or_prefix]
    if exact:
        return exact[0]
    matches = [r for r in records if r["name"].startswith(name_or_prefix)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserMistake(
            f"no execution is named {shorten(name_or_prefix, 80)!r} or starts with it; "
            "`mlops status` lists them"
        )
    names = ", ".join(r["name"] for r in matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise UserMistake(
        f"{len(matches)} executions start with {name_or_prefix!r} ({names}); give more of the name"
    )


def runtime_state(settings: Settings, record: dict[str, Any]) -> str:
    """``live`` when a RUNNING execution's runtime is alive, ``gone`` when it died, else ``""``.

    A ``gone`` execution is resumed by the next runtime that starts (``mlops resume``).
    """
    if record.get("status") != "RUNNING":
        return ""
    return "live" if runtime_alive(settings.home, record.get("runtime_id")) else "gone"


@app.command()
def status(
    target: Annotated[
        str | None, typer.Argument(help="an execution name (or a unique prefix), or an issue number")
    ] = None,
) -> None:
    """List executions; with an execution name show its states; with an issue number its comments.

    The runtime column tells a RUNNING execution whose runtime is alive (``live``) from one
    whose runtime died (``gone``: ``mlops resume`` takes it over).
    """
    settings = Settings.from_env()
    records = _records(settings)
    if target and target.isdigit():
        _known_issue(settings, int(target))
        _print_comments(local_issue_store(settings), int(target))
        records = [r for r in records if r["name"].startswith(f"issue-{target}-")]
    elif target:
        from statemachine.console import run_summary

        record = resolve_execution(records, target)
        run_summary(console, record)
        if runtime_state(settings, record) == "gone":
            console.print("[yellow]Its runtime is gone[/]: `mlops resume` takes the execution over.")
        return
    table = Table(title=f"Executions in {settings.home}")
    longest = max((len(r["name"]) for r in records), default=9)
    table.add_column("execution", no_wrap=True, min_width=longest)
    for column in ("status", "runtime", "state", "started"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record["name"],
            record.get("status", ""),
            runtime_state(settings, record),
            record.get("current_state") or "",
            str(record.get("started_at", ""))[:19],
        )
    Console(width=max(console.width, longest + 90)).print(table)


@app.command()
def resume(
    timeout: Annotated[float, typer.Option(help="seconds to wait for the resumed runs")] = 3600,
) -> None:
    """Take over the executions of a runtime that died: each resumes at its last state.

    A training job still running is adopted, a finished one is collected; a run that waited
    for its operator waits again. Follows the resumed executions until they end or wait, and
    exits 1 if one of them failed.
    """
    from statemachine.console import run_summary
    from statemachine.local_runtime import LocalRuntime

    settings = Settings.from_env()
    with console.status("starting the MCP server and the engine, resuming executions"):
        runtime = LocalRuntime(settings, Path.cwd(), force_local_issues=True, command="mlops resume").start()
    try:
        resumed = runtime.resumed
        for report in runtime.reports:
            console.print(f"[red]Could not resume[/] {report['execution']}: reported on its issue")
        if not resumed:
            if not runtime.reports:
                console.print("No execution to resume: every RUNNING execution has a live runtime.")
            raise typer.Exit(1 if runtime.reports else 0)
        failed = bool(runtime.reports)
        for arn in resumed:
            record = _follow(runtime, arn, timeout)
            if record.get("waiting"):
                console.print(f"{record['name']} waits for its operator again.")
                continue
            run_summary(console, record)
            failed = failed or record["status"] != "SUCCEEDED"
        if failed:
            raise typer.Exit(1)
    finally:
        runtime.stop()


@app.command()
def history(
    issue: Annotated[int | None, typer.Option(help="only this issue's runs, with its comments")] = None,
) -> None:
    """Show the committed training history (and an issue's comments with --issue)."""
    from mcp_server.core.rendering.history_markdown import front_matter

    settings = Settings.from_env()
    if issue is not None:
        _known_issue(settings, issue)
    folder = settings.history_repo_path / "training_history"
    table = Table(title=f"Training history in {folder}")
    for column in ("record", "issue", "status", "model", "version"):
        table.add_column(column)
    for path in sorted(folder.glob("*.md"), reverse=True):
        if path.name == "README.md":
            continue
        meta = front_matter(path.read_text())
        if issue is not None and int(meta.get("issue", 0)) != issue:
            continue
        table.add_row(
            path.name,
            f"#{meta.get('issue', '')}",
            str(meta.get("status", "")),
            str(meta.get("model_name", "") or ""),
            str(meta.get("model_version", "") or ""),
        )
    console.print(table)
    if issue is not None:
        _print_comments(local_issue_store(settings), issue)


def _endpoint_backend(settings: Settings) -> Any:
    from mcp_server.backends.factory import build_endpoint_backend

    return build_endpoint_backend(settings)


def _endpoint(backend: Any, name: str) -> Any:
    """Describe ``name``, or raise UserMistake naming the endpoints there are."""
    try:
        return backend.describe_endpoint(name)
    except NotFoundError as err:
        raise UserMistake(f"{err}; `mlops endpoints` lists them") from err


@app.command()
def endpoints(
    action_or_name: Annotated[
        str | None, typer.Argument(help="an endpoint's name, or stop / rollback followed by the name")
    ] = None,
    name: Annotated[str | None, typer.Argument(help="the endpoint, after stop or rollback")] = None,
    version: Annotated[
        str | None, typer.Option(help="rollback: the version to return to (default: the previous champion)")
    ] = None,
) -> None:
    """List endpoints; NAME shows one (variants, deployments, live metrics); stop NAME or rollback NAME."""
    from statemachine.console import endpoint_summary, endpoints_table

    settings = Settings.from_env()
    backend = _endpoint_backend(settings)
    if action_or_name in ("stop", "rollback"):
        if not name:
            raise UserMistake(f"name the endpoint: mlops endpoints {action_or_name} NAME")
        endpoint = _endpoint(backend, name)
        if action_or_name == "stop":
            if endpoint.status == "Stopped":
                raise UserMistake(f"endpoint {name} is already stopped")
            stopped = backend.delete_endpoint(name, by="cli")
            console.print(f"Endpoint {name}: {stopped.status}; its history and captured data are kept.")
            return
        from mcp_server.core.deployment.models import DesiredEndpoint, rollback_variants
        from mcp_server.errors import EndpointError

        try:
            variant, summary = rollback_variants(endpoint, version)
        except ValueError as err:
            raise UserMistake(str(err)) from err
        desired = DesiredEndpoint(
            endpoint_name=name,
            variants=[variant],
            data_capture_percent=endpoint.data_capture_percent,
            action="rollback",
            by="cli",
            detail=summary,
        )
        try:
            endpoint = backend.apply(desired)
        except EndpointError as err:
            raise UserMistake(f"{err}; the endpoint keeps serving what it served") from err
        console.print(f"Endpoint {name} rolled {summary}.")
        endpoint_summary(console, endpoint, None)
        return
    if action_or_name is not None:
        if name is not None:
            raise UserMistake(f"unknown action {action_or_name!r}: use stop or rollback")
        endpoint = _endpoint(backend, action_or_name)
        endpoint_summary(console, endpoint, _live_metrics(backend, endpoint))
        return
    found = backend.list_endpoints()
    if not found:
        console.print(f"No endpoints in {settings.home}: an issue with a deployment section creates one.")
        return
    console.print(endpoints_table(found, {e.name: _live_metrics(backend, e) for e in found}))


def _live_metrics(backend: Any, endpoint: Any) -> Any:
    """The endpoint's metrics, or None when it is not serving (stopped, failed, unreachable)."""
    from mcp_server.errors import MlopsError

    if endpoint.status != "InService":
        return None
    try:
        return backend.get_endpoint_metrics(endpoint.name)
    except MlopsError:
        return None


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="the endpoint")],
    rows: Annotated[
        Path, typer.Argument(help="a CSV file (a header line is skipped) or a JSON file of rows")
    ],
    variant: Annotated[str | None, typer.Option(help="send to this production variant")] = None,
) -> None:
    """Send the rows to an endpoint and print its predictions."""
    from training_containers.inference.schema import MAX_BODY_BYTES

    settings = Settings.from_env()
    backend = _endpoint_backend(settings)
    _endpoint(backend, name)
    try:
        body = rows.read_bytes()
    except OSError as err:
        raise UserMistake(f"cannot read {rows}: {err.strerror or err}") from err
    if len(body) > MAX_BODY_BYTES:
        raise UserMistake(
            f"{rows} is {len(body)} bytes; an endpoint takes at most {MAX_BODY_BYTES} a request"
        )
    content_type = "text/csv" if rows.suffix.lower() in (".csv", ".txt") else "application/json"
    from mcp_server.errors import EndpointError

    try:
        answer = backend.invoke_endpoint(name, body, content_type, target_variant=variant)
    except EndpointError as err:
        raise UserMistake(str(err)) from err
    if answer.status != 200:
        raise UserMistake(f"endpoint {name} answered {answer.status}: {shorten(answer.body, 500)}")
    try:
        result = json.loads(answer.body)
    except ValueError:
        console.print(answer.body)
        return
    predictions = result.get("predictions", []) if isinstance(result, dict) else result
    table = Table(title=f"{name}: {len(predictions)} prediction(s) from variant {answer.variant or '?'}")
    table.add_column("row", justify="right")
    table.add_column("prediction")
    probabilities = result.get("probabilities") if isinstance(result, dict) else None
    if probabilities:
        table.add_column("probabilities")
    for index, prediction in enumerate(predictions, start=1):
        cells = [str(index), str(prediction)]
        if probabilities:
            cells.append(", ".join(f"{p:.3f}" for p in probabilities[index - 1]))
        table.add_row(*cells)
    console.print(table)


@app.command()
def monitor(
    name: Annotated[str, typer.Argument(help="the monitored endpoint")],
    wait: Annotated[bool, typer.Option(help="follow a retrain run the monitor starts to its end")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 3600,
) -> None:
    """Run the endpoint's monitoring job now: drift, model quality, alerts and retraining triggers."""
    from rich.markdown import Markdown

    from statemachine.local_runtime import LocalRuntime

    settings = Settings.from_env()
    monitoring = _monitoring_backend(settings)
    try:
        schedule = monitoring.get_monitoring_schedule(name)
    except NotFoundError as err:
        known = ", ".join(s.endpoint_name for s in monitoring.list_monitoring_schedules()) or "none yet"
        raise UserMistake(f"{err}; monitored endpoints: {known}") from err
    with console.status("starting the MCP server and the engine"):
        runtime = LocalRuntime(settings, Path.cwd(), command="mlops monitor").start()
    try:
        with console.status(f"monitoring {name}") as status:
            result = runtime.monitor(
                name,
                requested_by="cli",
                timeout_s=timeout,
                on_update=lambda s: status.update(f"monitoring {name}: {s}"),
            )
        state = result["output"] or {}
        if result["status"] != "SUCCEEDED":
            raise UserMistake(
                f"monitoring {name} failed ({result['error']}): {shorten(str(result['cause'] or ''), 600)}; "
                f"the issue #{schedule.issue.number} says so too"
            )
        job = state.get("job") or {}
        if job.get("job_name"):
            markdown, _ = monitoring.read_report_markdown(job["job_name"])
            console.print(Markdown(markdown))
            folder = monitoring.job_folder(name, job["job_name"])
            console.print(f"Job {job['job_name']}: {job['status']}; files in {folder}")
        else:
            console.print(f"No monitoring job for {name} (it is watched for retraining triggers only).")
        alarms = state.get("alarms") or {}
        for key in alarms.get("opened", []):
            console.print(f"[red]alert[/] {escape(key)}")
        for key in alarms.get("resolved", []):
            console.print(f"[green]resolved[/] {escape(key)}")
        for delivery in (state.get("alert") or {}).get("deliveries", []):
            outcome = "sent" if delivery.get("delivered") else f"not sent: {delivery.get('error')}"
            console.print(
                f"  {delivery.get('channel')}: {escape(str(delivery.get('target') or ''))} {escape(outcome)}"
            )
        if alarms.get("skipped_retrain"):
            console.print(f"No retrain: {escape(alarms['skipped_retrain'])}")
        retraining = state.get("retraining")
        if retraining:
            console.print(
                f"Retrain started ({retraining['trigger']['kind']}): execution {retraining['execution_name']}"
            )
            if wait:
                started = time.perf_counter()
                record = _follow(runtime, retraining["execution_arn"], timeout)
                store: Any = runtime.backends.issues  # type: ignore[union-attr]
                _report(record, retraining["issue_number"], started, store)
    finally:
        runtime.stop()


@app.command()
def push(
    before: Annotated[str, typer.Option(help="the commit the branch was at before the push")] = "HEAD~1",
    after: Annotated[str, typer.Option(help="the pushed commit")] = "HEAD",
    author: Annotated[str, typer.Option("--as", help="the pusher's login")] = "local-user",
    wait: Annotated[bool, typer.Option(help="follow the retrain runs the push starts to their end")] = True,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 3600,
) -> None:
    """Deliver the push webhook of this checkout's commits: models whose code changed retrain."""
    from mcp_server.core.events import PushEvent
    from statemachine.local_runtime import LocalRuntime
    from statemachine.webhooks import GitError, push_payload

    settings = Settings.from_env()
    try:
        payload = push_payload(Path.cwd(), before, after, pusher=author)
    except GitError as err:
        raise UserMistake(str(err)) from err
    paths = PushEvent.model_validate(payload).paths
    console.print(
        f"Push {payload['before'][:7]}..{payload['after'][:7]} to {payload['repository']['default_branch']}: "
        f"{len(payload['commits'])} commit(s), {len(paths)} path(s)"
    )
    with console.status("starting the MCP server and the engine"):
        runtime = LocalRuntime(settings, Path.cwd(), command="mlops push").start()
    try:
        response = runtime.deliver("push", payload)
        console.print(
            f"Webhook answered {response['statusCode']} {response['status']}: "
            f"{escape(str(response.get('message', '')))}".rstrip(": ")
        )
        for skipped in response.get("skipped", []):
            console.print(f"  {skipped['endpoint_name']}: not retrained ({escape(skipped['why'])})")
        for execution in response.get("executions", []):
            _push_outcome(runtime, execution, wait, timeout)
    finally:
        runtime.stop()


def _push_outcome(runtime: Any, execution: dict[str, Any], wait: bool, timeout: float) -> None:
    """Wait for one code-change monitoring execution; print and follow the retrain it started."""
    endpoint = execution["endpoint_name"]
    result = runtime.wait_monitoring(execution["execution_arn"], timeout)
    state = result["output"] or {}
    retraining = state.get("retraining")
    if result["status"] != "SUCCEEDED":
        console.print(f"  {endpoint}: [red]failed[/] ({escape(str(result['cause']))})")
    elif not retraining:
        why = (state.get("alarms") or {}).get("skipped_retrain") or "no trigger"
        console.print(f"  {endpoint}: no retrain: {escape(why)}")
    else:
        reason = escape(retraining["trigger"]["reason"])
        console.print(f"  {endpoint}: retrain started ({reason}): execution {retraining['execution_name']}")
        if wait:
            started = time.perf_counter()
            record = _follow(runtime, retraining["execution_arn"], timeout)
            store: Any = runtime.backends.issues
            _report(record, retraining["issue_number"], started, store)


@app.command()
def feedback(
    name: Annotated[str, typer.Argument(help="the endpoint whose predictions the labels grade")],
    labels: Annotated[Path, typer.Argument(help="CSV with columns inference_id,label")],
) -> None:
    """Upload ground truth (inference id -> label) for model-quality monitoring."""
    from statemachine.feedback import captured_ids, read_labels, unknown_ids

    settings = Settings.from_env()
    monitoring = _monitoring_backend(settings)
    backend = _endpoint_backend(settings)
    _endpoint(backend, name)
    try:
        found, duplicates = read_labels(labels)
    except ValueError as err:
        raise UserMistake(str(err)) from err
    receipt = monitoring.put_ground_truth(name, found)
    unknown = unknown_ids(found, captured_ids(settings.home / "capture" / name))
    console.print(f"Stored {receipt.records} label(s) for {name} in {receipt.uri}")
    if duplicates:
        console.print(
            f"{duplicates} inference id(s) appeared more than once: the last label of each was kept"
        )
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        console.print(
            f"[yellow]{len(unknown)} inference id(s) match no captured request[/] ({escape(shown)}): "
            "the next monitoring job reports them and grades the others"
        )


def _monitoring_backend(settings: Settings) -> Any:
    from mcp_server.backends.local.monitoring import LocalMonitoringBackend

    return LocalMonitoringBackend(settings, Path.cwd())


def _crash_log(err: BaseException) -> Path:
    """Write ``err``'s traceback to ``{home}/logs/cli-<time>.log`` (or the temp folder); its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    text = "".join(traceback.format_exception(err))
    for folder in (Settings.from_env().home / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"mlops-cli-{stamp}.log"
            path.write_text(f"mlops {' '.join(sys.argv[1:])}\n{text}")
            return path
        except OSError:
            continue
    return Path("(no writable folder for the log)")


def main(argv: list[str] | None = None) -> None:
    """The ``mlops`` entry point: run a command; errors end in one line, never a traceback.

    Exit codes: 0 done, 1 a user's mistake (the message names the fix) or a failed run, 2 an
    unexpected error (the message names the log holding its traceback), 130 interrupted.
    """
    try:
        app(argv if argv is not None else sys.argv[1:], prog_name="mlops")
    except UserMistake as err:
        errors.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the one place that turns any error into a message
        log = _crash_log(err)
        errors.print(
            f"[red]unexpected error:[/] {type(err).__name__}: {escape(shorten(str(err), 300))}\n"
            f"The traceback is in {log}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
