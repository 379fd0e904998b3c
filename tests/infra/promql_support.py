"""Metric names in PromQL, and the names Switchyard exports: what the rules and the dashboard
may use (docs/observability.md, "Metrics").

The names of counters and histograms come from the code (``workers/metrics/definitions.py``,
every ``prometheus_client`` metric defined there) and must include the agreed list below; the
cluster-wide gauges are computed by collectors at scrape time, so they are listed here.
"""

from __future__ import annotations

import re
from typing import Any

# The agreed names (issue 19), by kind: the rules and dashboard were written against these.
COUNTERS = (
    "switchyard_jobs_submitted",
    "switchyard_jobs_accepted",
    "switchyard_jobs_refused",
    "switchyard_jobs_ended",
    "switchyard_tokens",
    "switchyard_cost_usd",
    "switchyard_cache_lookups",
    "switchyard_cache_savings_usd",
    "switchyard_provider_rate_limited",
    "switchyard_retries",
    "switchyard_fallbacks",
    "switchyard_capacity_handbacks",
    "switchyard_webhook_deliveries",
)
HISTOGRAMS = (
    "switchyard_job_queue_wait_seconds",
    "switchyard_provider_call_seconds",
    "switchyard_time_to_first_token_seconds",
    "switchyard_job_duration_seconds",
)
# Exported only by the API's /metrics, read from Redis and the database at scrape time.
CLUSTER_GAUGES = (
    *(
        f"switchyard_ratelimit_{name}"
        for name in ("requests_headroom", "tokens_headroom", "in_flight", "paused_seconds", "factor")
    ),
    "switchyard_queue_depth",
    "switchyard_queue_drain_seconds",
    *(
        f"switchyard_semantic_cache_{name}"
        for name in ("verified", "disagreed", "threshold_raises", "estimated_false_hit_rate")
    ),
    "switchyard_webhook_dead_letters",
    "switchyard_budget_spent_usd",
    "switchyard_budget_remaining_usd",
    "switchyard_budget_limit_usd",
    "switchyard_kill_switches_active",
)
# End-to-end buckets the latency objectives must fall on, when the code cannot be read.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
    | {"inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: identifiers that are not functions, keywords, label
    names (in matchers or grouping), strings, durations or numbers."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, before = match.group(), text[: match.start()]
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # the exponent or unit of a number (1e3, 5m)
        if text[match.end() :].lstrip().startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def variable_metric_names(query: str) -> set[str]:
    """The metric a Grafana variable's ``label_values(metric, label)`` reads."""
    return set(_LABEL_VALUES.findall(query))


def sample_names(name: str, kind: str) -> set[str]:
    """The series names a metric of ``kind`` exports."""
    if kind == "counter":
        return {f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def agreed_sample_names() -> set[str]:
    """Every series name of the agreed list."""
    names = {sample for name in COUNTERS for sample in sample_names(name, "counter")}
    names |= {sample for name in HISTOGRAMS for sample in sample_names(name, "histogram")}
    return names | set(CLUSTER_GAUGES)


def defined_metrics() -> dict[str, str] | None:
    """Name -> kind of every metric ``workers/metrics/definitions.py`` defines; None before it exists."""
    try:
        from prometheus_client.metrics import MetricWrapperBase

        from workers.metrics import definitions
    except ImportError:
        return None
    metrics: dict[str, Any] = {
        value._name: value._type
        for value in vars(definitions).values()
        if isinstance(value, MetricWrapperBase)
    }
    return metrics


def duration_buckets() -> tuple[float, ...]:
    """The end-to-end histogram's bucket bounds, from the code when it is there."""
    try:
        from prometheus_client import Histogram

        from workers.metrics import definitions
    except ImportError:
        return DURATION_BUCKETS
    for value in vars(definitions).values():
        if isinstance(value, Histogram) and value._name == "switchyard_job_duration_seconds":
            return tuple(bound for bound in value._upper_bounds if bound != float("inf"))
    raise AssertionError("workers/metrics/definitions.py defines no switchyard_job_duration_seconds")
