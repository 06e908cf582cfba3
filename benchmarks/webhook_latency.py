"""Latency of the webhook handler, from the signature check to a started execution.

Sends ``--requests`` signed ``issues.labeled`` deliveries of the demo issue (each with a new
delivery id, so each starts an execution) to the real handler, whose Step Functions client
points at the local engine. The state machine here is a single Pass state, so the figure is the
handler's own work (signature, parsing the issue form, validating the spec, StartExecution) and
not the training that would follow. Prints ``{"p50_ms", "p95_ms", ...}``. Goal: p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.issue_detector import DetectorConfig, IssueDetector  # noqa: E402
from statemachine.engine import LocalEngine  # noqa: E402
from statemachine.functions import local_substitutions  # noqa: E402
from statemachine.local_runtime import quiet_libraries  # noqa: E402
from statemachine.webhooks import api_gateway_event, issue_payload, read_issue_file  # noqa: E402

PASS_ONLY = json.dumps({"StartAt": "Accepted", "States": {"Accepted": {"Type": "Pass", "End": True}}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    quiet_libraries()
    engine = LocalEngine().start({}, local_substitutions())
    arn = engine.create_state_machine("webhook-benchmark", PASS_ONLY)
    secret = b"benchmark-secret"
    detector = IssueDetector(DetectorConfig(webhook_secret=secret, state_machine_arn=arn), engine.client())
    title, body = read_issue_file(ROOT / "examples" / "issues" / "breast-cancer-xgboost.md")
    payload = issue_payload(1, title, body, "bench", "OWNER")
    latencies = []
    for i in range(args.requests + 20):
        event = api_gateway_event(secret, "issues", payload)
        started = time.perf_counter()
        response = detector.handle(event)
        elapsed = (time.perf_counter() - started) * 1000
        assert json.loads(response["body"])["status"] == "started", response
        if i >= 20:  # the first deliveries warm up connections and imports
            latencies.append(elapsed)
    engine.stop()
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        json.dumps(
            {
                "p50_ms": round(statistics.median(latencies), 2),
                "p95_ms": round(quantiles[94], 2),
                "max_ms": round(max(latencies), 2),
                "requests": len(latencies),
            }
        )
    )


if __name__ == "__main__":
    main()
