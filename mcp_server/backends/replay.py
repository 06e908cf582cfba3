"""Validation traffic: the held-out test split replayed against an endpoint, one row a request.

Both endpoint backends read the split (``data.parquet`` under the split's folder URI) their own
way and pass the rows here with their ``invoke_endpoint``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from mcp_server.core.deployment.models import InvocationResult, ReplaySummary


def replay_rows(
    frame: Any,
    feature_names: list[str],
    invoke: Callable[[bytes], InvocationResult],
    max_rows: int,
) -> ReplaySummary:
    """Send up to ``max_rows`` rows of ``frame`` (a pandas DataFrame) as single-row JSON requests.

    Missing values travel as JSON ``null`` (the endpoint imputes them as in training).

    Returns:
        How many requests were sent and the answers by status class.
    """
    rows = frame[feature_names].head(max_rows).to_dict(orient="records")
    statuses: Counter[str] = Counter()
    for row in rows:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else _plain(v)) for k, v in row.items()}
        answer = invoke(json.dumps({"instances": [clean]}).encode())
        statuses[f"{answer.status // 100}xx"] += 1
    return ReplaySummary(sent=len(rows), statuses=dict(statuses))


def _plain(value: Any) -> Any:
    """Numpy scalars as Python ones (JSON-serialisable)."""
    return value.item() if hasattr(value, "item") else value
