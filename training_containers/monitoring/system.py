"""The endpoint's system metrics over the monitoring window (FR-021): read, summarised, plotted.

A local endpoint's samples (``mcp_server.core.deployment.metrics.SystemSample``, one JSON object
a line, written by ``mlops serve`` every scheduler tick) are mounted as ``input/system/``. Each
sample covers the traffic since the previous one: requests, 4xx and 5xx answers, RPS, latency
p50/p95/p99 (milliseconds), the server's CPU (percent of one core) and resident memory (MiB).
On SageMaker the channel is absent: CloudWatch has these series and the endpoint's dashboard
plots them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

#: The series plotted, by panel: (title, unit, sample fields).
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Latency", "ms", ("p50_ms", "p95_ms", "p99_ms")),
    ("Traffic", "per second", ("rps",)),
    ("Errors", "answers", ("errors_4xx", "errors_5xx")),
    ("CPU", "% of one core", ("cpu_percent",)),
    ("Memory", "MiB", ("memory_mb",)),
)


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_samples(folder: Path, since: str | None, until: str) -> tuple[list[dict[str, Any]], int]:
    """The samples taken in ``[since, until)`` (ISO-8601 UTC), oldest first, and the lines skipped.

    A line that is not a JSON object with a numeric ``at`` is skipped and counted.
    """
    start, end = _epoch(since), _epoch(until)
    samples, skipped = [], 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(errors="replace").splitlines():
            try:
                sample = json.loads(line)
                at = float(sample["at"])
            except (ValueError, TypeError, KeyError):
                skipped += 1
                continue
            if (start is None or at >= start) and (end is None or at < end):
                samples.append(sample)
    return sorted(samples, key=lambda s: s["at"]), skipped


def summary(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Totals and peaks over the samples; empty without samples.

    Returns:
        ``samples``, ``requests``, ``errors_5xx``, and the largest ``rps``, ``p95_ms``,
        ``p99_ms``, ``cpu_percent`` and ``memory_mb`` as ``max_{field}`` (a peak is left out
        when no sample has it).
    """
    if not samples:
        return {}
    found: dict[str, float] = {
        "samples": len(samples),
        "requests": sum(int(s.get("requests") or 0) for s in samples),
        "errors_5xx": sum(int(s.get("errors_5xx") or 0) for s in samples),
    }
    for field in ("rps", "p95_ms", "p99_ms", "cpu_percent", "memory_mb"):
        values = [float(s[field]) for s in samples if s.get(field) is not None]
        if values:
            found[f"max_{field}"] = round(max(values), 3)
    return found


def plot(output: Path, samples: list[dict[str, Any]]) -> dict[str, str]:
    """Plot every panel of ``PANELS`` over time as ``plots/system_metrics.png``; name -> path.

    Nothing is plotted with fewer than two samples.
    """
    if len(samples) < 2:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    times = [dt.datetime.fromtimestamp(float(s["at"]), dt.UTC) for s in samples]
    figure, axes = plt.subplots(len(PANELS), 1, figsize=(7, 2.0 * len(PANELS)), sharex=True)
    for axis, (title, unit, fields) in zip(axes, PANELS, strict=True):
        for field in fields:
            values = [s.get(field) for s in samples]
            axis.plot(
                times,
                [float("nan") if v is None else float(v) for v in values],
                marker="o",
                markersize=3,
                label=field,
            )
        axis.set_title(title, fontsize=9)
        axis.set_ylabel(unit, fontsize=8)
        axis.legend(fontsize=7, loc="upper left")
        axis.grid(alpha=0.3)
    locator = mdates.AutoDateLocator(tz=dt.UTC)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC))
    axes[-1].set_xlabel("time (UTC)")
    figure.tight_layout()
    (output / "plots").mkdir(parents=True, exist_ok=True)
    figure.savefig(output / "plots" / "system_metrics.png", dpi=80)
    plt.close(figure)
    return {"system_metrics": "plots/system_metrics.png"}


def markdown(found: dict[str, float]) -> list[str]:
    """The report's "System metrics" lines (none without samples)."""
    if not found:
        return []

    def peak(field: str, unit: str) -> str:
        value = found.get(f"max_{field}")
        return "—" if value is None else f"{value:g} {unit}"

    return [
        f"## System metrics ({int(found['samples'])} sample(s))",
        "",
        f"- Requests: {int(found['requests'])}, 5xx answers: {int(found['errors_5xx'])}",
        f"- Peak RPS: {peak('rps', '/s')}; peak p95 latency: {peak('p95_ms', 'ms')}; "
        f"peak p99 latency: {peak('p99_ms', 'ms')}",
        f"- Peak CPU: {peak('cpu_percent', '% of one core')}; peak memory: {peak('memory_mb', 'MiB')}",
        "",
    ]
