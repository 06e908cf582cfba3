"""Endpoint metrics per production variant: counts, error rate and latency percentiles. Pure.

A local endpoint exposes cumulative counters and a latency histogram at ``/metrics``
(``training_containers.inference.serve``); ``parse_prometheus`` reads that text into a
``MetricsSnapshot`` and ``window`` subtracts an earlier snapshot, so a traffic step is judged on
the requests made during it. SageMaker's CloudWatch metrics arrive already windowed and are
turned into the same ``VariantMetrics``.

The server also exports its process's CPU time and resident memory (``prometheus_client``'s
``ProcessCollector``); ``system_sample`` turns two snapshots into one point of the endpoint's
system metrics over time (FR-021): latency percentiles, RPS, errors, CPU and memory.
"""

from __future__ import annotations

import math
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

#: The metric names the inference server exports (``serve.EndpointServer``).
LATENCY_METRIC = "endpoint_latency_seconds"
RESPONSES_METRIC = "endpoint_responses"
#: ``prometheus_client.ProcessCollector``'s series: CPU seconds and resident bytes of the server.
CPU_METRIC = "process_cpu_seconds_total"
MEMORY_METRIC = "process_resident_memory_bytes"


class VariantCounts(BaseModel):
    """One variant's cumulative counters at one moment.

    Attributes:
        responses: status class (``2xx``, ``4xx``, ``5xx``) -> answers so far.
        buckets: latency histogram, upper bound in seconds (``inf`` last) -> cumulative count.
        latency_sum_s: the sum of all latencies, seconds.
    """

    model_config = ConfigDict(extra="forbid")

    responses: dict[str, float] = Field(default_factory=dict)
    buckets: list[tuple[float, float]] = Field(default_factory=list)
    latency_sum_s: float = 0.0


class MetricsSnapshot(BaseModel):
    """Every variant's counters at ``at`` (seconds since the epoch), and the server's process.

    Attributes:
        cpu_seconds: the server process's CPU time so far (user + system), seconds.
        memory_bytes: its resident memory, bytes.
    """

    model_config = ConfigDict(extra="forbid")

    at: float
    variants: dict[str, VariantCounts] = Field(default_factory=dict)
    cpu_seconds: float | None = None
    memory_bytes: float | None = None


class SystemSample(BaseModel):
    """One point of an endpoint's system metrics: every variant's traffic since the previous point.

    Attributes:
        at: the sample's time, seconds since the epoch.
        window_s: seconds since the previous sample.
        requests, errors_4xx, errors_5xx: answers in the window, all variants together.
        rps: requests per second over the window.
        p50_ms, p95_ms, p99_ms: latency percentiles over the window, milliseconds (None
            without requests).
        cpu_percent: the server's CPU use over the window, percent of one core (above 100 on
            several cores); None when unknown or when the server restarted.
        memory_mb: its resident memory at ``at``, MiB.
    """

    model_config = ConfigDict(extra="forbid")

    at: float
    window_s: float
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    cpu_percent: float | None = None
    memory_mb: float | None = None


class VariantMetrics(BaseModel):
    """One variant's traffic over a window.

    Attributes:
        variant: the production variant.
        requests: answers in the window (2xx + 4xx + 5xx).
        errors_4xx, errors_5xx: answers refused as the caller's fault, and failures.
        error_rate: ``errors_5xx / requests`` as a fraction (0 without requests): 4xx answers
            are the caller's mistakes and do not count against a model, as SageMaker's
            ``Invocation5XXErrors`` alarm does.
        p50_ms, p95_ms, p99_ms: latency percentiles in milliseconds, or None without requests.
        rps: requests per second over the window, or None when its length is unknown.
    """

    model_config = ConfigDict(extra="forbid")

    variant: str
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    error_rate: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    rps: float | None = None


def parse_prometheus(text: str, at: float, endpoint: str | None = None) -> MetricsSnapshot:
    """Read the inference server's ``/metrics`` text into a snapshot.

    Args:
        text: the Prometheus text exposition.
        at: when it was read, seconds since the epoch.
        endpoint: keep only this endpoint's series (None keeps all).

    Raises:
        ValueError: the text is not in the Prometheus format.
    """
    responses: dict[str, dict[str, float]] = defaultdict(dict)
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    sums: dict[str, float] = defaultdict(float)
    process: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name in (CPU_METRIC, MEMORY_METRIC):
                process[sample.name] = sample.value
                continue
            if "variant" not in labels or (endpoint is not None and labels.get("endpoint") != endpoint):
                continue
            variant = labels["variant"]
            if sample.name == f"{RESPONSES_METRIC}_total":
                responses[variant][labels["status"]] = sample.value
            elif sample.name == f"{LATENCY_METRIC}_bucket":
                buckets[variant].append((float(labels["le"]), sample.value))
            elif sample.name == f"{LATENCY_METRIC}_sum":
                sums[variant] = sample.value
    names = set(responses) | set(buckets)
    return MetricsSnapshot(
        at=at,
        variants={
            name: VariantCounts(
                responses=responses[name], buckets=sorted(buckets[name]), latency_sum_s=sums[name]
            )
            for name in sorted(names)
        },
        cpu_seconds=process.get(CPU_METRIC),
        memory_bytes=process.get(MEMORY_METRIC),
    )


def system_sample(current: MetricsSnapshot, earlier: MetricsSnapshot) -> SystemSample:
    """The endpoint's system metrics between two snapshots, every variant's counts summed.

    A counter that went down means the server restarted in between: the current counts are
    then the whole window, and the CPU use is unknown.

    Raises:
        ValueError: ``earlier`` is not before ``current``.
    """
    seconds = current.at - earlier.at
    if seconds <= 0:
        raise ValueError(f"snapshots out of order: {earlier.at} is not before {current.at}")
    merged = _merged(list(_counts_since(current, earlier).values()))
    traffic = summarise("all", merged, seconds)
    cpu = None
    if (
        current.cpu_seconds is not None
        and earlier.cpu_seconds is not None
        and current.cpu_seconds >= earlier.cpu_seconds
    ):
        cpu = round(100 * (current.cpu_seconds - earlier.cpu_seconds) / seconds, 2)
    return SystemSample(
        at=current.at,
        window_s=round(seconds, 3),
        **traffic.model_dump(exclude={"variant", "error_rate"}),
        cpu_percent=cpu,
        memory_mb=round(current.memory_bytes / 2**20, 1) if current.memory_bytes is not None else None,
    )


def _merged(counts: list[VariantCounts]) -> VariantCounts:
    """Several variants' counts as one (their histograms share the server's buckets)."""
    responses: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    for one in counts:
        for key, value in one.responses.items():
            responses[key] += value
        for bound, value in one.buckets:
            buckets[bound] += value
    return VariantCounts(
        responses=dict(responses),
        buckets=sorted(buckets.items()),
        latency_sum_s=sum(one.latency_sum_s for one in counts),
    )


def window(current: MetricsSnapshot, earlier: MetricsSnapshot | None) -> dict[str, VariantMetrics]:
    """Return each variant's metrics between ``earlier`` and ``current``.

    A counter that went down means the server restarted between the two: the current counts
    are then the whole window. ``earlier`` None counts everything since the server started.
    """
    seconds = current.at - earlier.at if earlier is not None else None
    return {
        name: summarise(name, counts, seconds) for name, counts in _counts_since(current, earlier).items()
    }


def _counts_since(current: MetricsSnapshot, earlier: MetricsSnapshot | None) -> dict[str, VariantCounts]:
    """Each variant's counts between the snapshots (all of them when its server restarted)."""
    counts = {}
    for name, now in current.variants.items():
        before = earlier.variants.get(name) if earlier is not None else None
        if before is not None and _restarted(now, before):
            before = None
        counts[name] = _minus(now, before)
    return counts


def summarise(variant: str, counts: VariantCounts, seconds: float | None) -> VariantMetrics:
    """Turn one variant's counts over a window of ``seconds`` into ``VariantMetrics``."""
    ok, client, server = (int(counts.responses.get(k, 0)) for k in ("2xx", "4xx", "5xx"))
    requests = ok + client + server

    def percentile(q: float) -> float | None:
        value = histogram_quantile(q, counts.buckets)
        return None if value is None else round(value * 1000, 3)

    return VariantMetrics(
        variant=variant,
        requests=requests,
        errors_4xx=client,
        errors_5xx=server,
        error_rate=server / requests if requests else 0.0,
        p50_ms=percentile(0.50),
        p95_ms=percentile(0.95),
        p99_ms=percentile(0.99),
        rps=round(requests / seconds, 3) if seconds and seconds > 0 else None,
    )


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q``-quantile of a cumulative histogram, as Prometheus' ``histogram_quantile``.

    The rank ``q x total`` falls in one bucket; the value is interpolated linearly between
    that bucket's lower and upper bounds. In the ``+Inf`` bucket the largest finite bound is
    returned. Source: the Prometheus documentation of ``histogram_quantile``.

    Args:
        q: the quantile, in 0..1.
        buckets: (upper bound, cumulative count) pairs sorted by bound, ``inf`` last.

    Returns:
        The quantile in the bounds' unit, or None when the histogram is empty.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _restarted(now: VariantCounts, before: VariantCounts) -> bool:
    total = sum(now.responses.values())
    return total < sum(before.responses.values())


def _minus(now: VariantCounts, before: VariantCounts | None) -> VariantCounts:
    if before is None:
        return now
    earlier = dict(before.buckets)
    return VariantCounts(
        responses={k: v - before.responses.get(k, 0) for k, v in now.responses.items()},
        buckets=[(bound, count - earlier.get(bound, 0)) for bound, count in now.buckets],
        latency_sum_s=now.latency_sum_s - before.latency_sum_s,
    )
