"""Fuzz the spec reader: ``validate_spec(extract_spec(body))`` over generated issue bodies.

Each input is a mutated example issue, hostile YAML (alias bombs, 1000-deep nesting, explicit
tags, 5000-digit integers, megabyte strings, keys that look like pydantic's union tags) or a
broken issue form (``tests/spec_inputs.py``). An input is *handled* when validation returns a
``TrainingSpec`` or raises ``SpecValidationError``; anything else is *unhandled*. An input is
*slow* when it takes more than 1 s. Prints ``{"inputs", "unhandled", "slow", "max_s", ...}``.
Goal: unhandled 0, slow 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from mcp_server.core.spec.issue_form import extract_spec  # noqa: E402
from mcp_server.core.spec.schema import SpecValidationError, validate_spec  # noqa: E402
from tests.spec_inputs import random_body  # noqa: E402

TEMPLATE = yaml.safe_load((ROOT / "issue_templates" / "train.yml").read_text())
ENVIRONMENTS = frozenset({"CartPole-v1", "Acrobot-v1", "MountainCar-v0"})


def check(body: str) -> tuple[str, float]:
    """Validate one body; return ("accepted" | "rejected" | the escaping exception's class, seconds)."""
    started = time.perf_counter()
    try:
        validate_spec(extract_spec(body, TEMPLATE), lambda: ENVIRONMENTS)
        outcome = "accepted"
    except SpecValidationError as err:
        str(err)  # the message must be writable too
        outcome = "rejected"
    except BaseException as err:  # noqa: BLE001 - counting what escapes is the point
        outcome = type(err).__name__
        if outcome in ("KeyboardInterrupt", "SystemExit"):
            raise
    return outcome, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--show", type=int, default=3, help="unhandled inputs to print to stderr")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    slow, max_s, shown = 0, 0.0, 0
    started = time.perf_counter()
    for _ in range(args.inputs):
        body = random_body(rng)
        outcome, seconds = check(body)
        outcomes[outcome] += 1
        slow += seconds > 1.0
        max_s = max(max_s, seconds)
        if outcome not in ("accepted", "rejected") and shown < args.show:
            shown += 1
            print(f"unhandled {outcome} on: {body[:300]!r}", file=sys.stderr)
            try:
                validate_spec(extract_spec(body, TEMPLATE), lambda: ENVIRONMENTS)
            except BaseException:  # noqa: BLE001
                traceback.print_exc(limit=4)
    unhandled = sum(n for k, n in outcomes.items() if k not in ("accepted", "rejected"))
    print(
        json.dumps(
            {
                "inputs": args.inputs,
                "unhandled": unhandled,
                "slow": slow,
                "max_s": round(max_s, 3),
                "accepted": outcomes["accepted"],
                "rejected": outcomes["rejected"],
                "escaped": {k: n for k, n in outcomes.items() if k not in ("accepted", "rejected")},
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
