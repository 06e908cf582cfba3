"""From injected drift to the alert on the issue, with the local scheduler as ``mlops serve`` runs it.

Runs ``examples/issues/breast-cancer-monitored.md`` through a local runtime on a fresh workspace
(train, register, deploy, monitoring on), sets the endpoint's monitoring schedule to
``rate(--interval-s seconds)`` (whole minutes, as EventBridge's rates), starts the scheduler
(``--tick-s``), waits until the first scheduled monitoring run has happened (so the drift lands
at a random point of an interval, not just before one), then sends 300 requests whose
``mean radius`` is shifted and waits for the alert comment.

Prints one JSON object: ``{"interval_s", "tick_s", "seconds_to_comment", "goal_s", "met"}``:
the seconds from the first drifted request to the alert comment, against the goal of one
monitoring interval plus 10 s (issue "Watch and retrain").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.datasets import load_breast_cancer  # noqa: E402

from mcp_server.settings import Settings  # noqa: E402
from statemachine.local_runtime import LocalRuntime  # noqa: E402
from statemachine.webhooks import issue_payload, read_issue_file  # noqa: E402

EXAMPLE = ROOT / "examples" / "issues" / "breast-cancer-monitored.md"
ENDPOINT = "breast-cancer-monitored"


def send_drift(url: str, count: int) -> None:
    """``count`` single-row requests with ``mean radius`` times 1.6."""
    data = load_breast_cancer()
    for i in range(count):
        row = data.data[i % len(data.data)].tolist()
        row[0] *= 1.6
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"instances": [row]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


def main() -> None:
    """Deploy, schedule, inject drift, time the alert."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval-s", type=int, default=60)
    parser.add_argument("--tick-s", type=float, default=5.0)
    args = parser.parse_args()
    minutes = max(1, args.interval_s // 60)
    # the stopped endpoint's server may still be closing its log when the folder goes
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        settings = Settings.from_env(environ={}, home=Path(scratch) / ".mlops")
        runtime = LocalRuntime(settings, ROOT, force_local_issues=True).start()
        try:
            title, body = read_issue_file(EXAMPLE)
            issue = runtime.backends.issues.create_issue(
                title=title, body=body, author="bench", labels=["mlops:train"]
            )
            response = runtime.deliver("issues", issue_payload(issue.number, title, body, "bench", "OWNER"))
            record = runtime.wait(response["execution_arn"], timeout_s=600)
            if record["status"] != "SUCCEEDED":
                sys.exit(f"the run failed: {record.get('cause')}")
            monitoring = runtime.backends.monitoring
            schedule = monitoring.get_monitoring_schedule(ENDPOINT)
            expression = f"rate({minutes} minute{'s' if minutes > 1 else ''})"
            assert schedule.monitoring is not None
            monitoring.put_monitoring_schedule(
                schedule.model_copy(
                    update={"monitoring": schedule.monitoring.model_copy(update={"schedule": expression})}
                )
            )
            scheduler = runtime.start_scheduler(tick_s=args.tick_s)
            try:
                while not monitoring.get_monitor_state(ENDPOINT).last_job:  # one scheduled run first
                    time.sleep(0.5)
                url = runtime.backends.endpoints.describe_endpoint(ENDPOINT).url
                last = runtime.backends.issues.list_comments(issue.number)[-1].id
                injected = time.monotonic()
                send_drift(url, 300)
                deadline = injected + 3 * minutes * 60 + 60
                while time.monotonic() < deadline:
                    comments = runtime.backends.issues.list_comments(issue.number)
                    if any(c.id > last and c.body.startswith("### Monitoring alert") for c in comments):
                        break
                    time.sleep(0.2)
                elapsed = time.monotonic() - injected
            finally:
                scheduler.stop()
            runtime.backends.endpoints.delete_endpoint(ENDPOINT)
        finally:
            runtime.stop()
    goal = minutes * 60 + 10
    print(
        json.dumps(
            {
                "interval_s": minutes * 60,
                "tick_s": args.tick_s,
                "seconds_to_comment": round(elapsed, 1),
                "goal_s": goal,
                "met": elapsed <= goal,
            }
        )
    )


if __name__ == "__main__":
    main()
