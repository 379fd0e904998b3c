"""Metric names in PromQL, and the names Switchyard exports: what the rules and the dashboard
may use (docs/observability.md, "Metrics").

What the code exports is read from a real scrape of the API's ``GET /metrics`` (its process
registry, with every counter and histogram of ``workers/metrics/definitions.py``, and the
cluster-wide collectors); the agreed names below must all be among them.
"""

from __future__ import annotations

import re

from prometheus_client import Histogram
from prometheus_client.parser import text_string_to_metric_families

from workers.metrics import definitions

# The agreed names (issue 19) the rules and dashboard were written against, by family.
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
CLUSTER_FAMILIES = (
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
    """The series names a metric family of ``kind`` exports."""
    if kind == "counter":
        return {f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}


def scraped_families(text: str) -> dict[str, str]:
    """Family name -> type of a Prometheus text exposition (families with no series yet included)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def duration_buckets() -> tuple[float, ...]:
    """The bucket bounds of the end-to-end histogram, as the code defines them."""
    for value in vars(definitions).values():
        if isinstance(value, Histogram) and value._name == "switchyard_job_duration_seconds":
            return tuple(bound for bound in value._upper_bounds if bound != float("inf"))
    raise AssertionError("workers/metrics/definitions.py defines no switchyard_job_duration_seconds")
