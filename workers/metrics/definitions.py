"""Every Switchyard counter and histogram, defined once; the rest of the code imports this module.

Names and labels are fixed by docs/observability.md. No metric has a tenant label: labels stay
bounded (tiers, priorities, models, providers, stable error codes). In a worker node the
values live in prometheus-client's multiprocess files (workers/metrics/node.py), so the
objects here are safe to use from prefork children and threads alike.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: a cache hit answers in milliseconds, a long generation takes minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Queue wait and end-to-end time: batch jobs may wait for hours (a 24 h completion window).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)

jobs_submitted = Counter(
    "switchyard_jobs_submitted",
    "Jobs and batch lines that reached validation at the API.",
    ["tier", "priority"],
)
jobs_accepted = Counter(
    "switchyard_jobs_accepted",
    "Submissions answered 2xx (queued or answered by the cache).",
    ["tier", "priority"],
)
jobs_refused = Counter("switchyard_jobs_refused", "Submissions refused, by error code.", ["tier", "code"])
jobs_ended = Counter(
    "switchyard_jobs_ended",
    "Jobs that reached succeeded, failed or canceled; once per job.",
    ["tier", "priority", "status", "error_code"],
)
job_queue_wait = Histogram(
    "switchyard_job_queue_wait_seconds",
    "From the job's creation to its first attempt's claim by a worker.",
    ["tier", "priority"],
    buckets=WAIT_BUCKETS,
)
provider_call = Histogram(
    "switchyard_provider_call_seconds",
    "Provider call latency, by outcome (ok or an error code).",
    ["tier", "model", "provider", "outcome"],
    buckets=LATENCY_BUCKETS,
)
time_to_first_token = Histogram(
    "switchyard_time_to_first_token_seconds",
    "From a streaming call's start to its first text delta.",
    ["tier", "model", "provider"],
    buckets=LATENCY_BUCKETS,
)
job_duration = Histogram(
    "switchyard_job_duration_seconds",
    "From the job's creation to its final state.",
    ["tier", "priority", "status"],
    buckets=WAIT_BUCKETS,
)
tokens = Counter(
    "switchyard_tokens",
    "Tokens of provider calls, prompt or completion.",
    ["tier", "model", "provider", "direction"],
)
cost_usd = Counter("switchyard_cost_usd", "Cost of provider calls in USD.", ["tier", "model", "provider"])
cache_lookups = Counter(
    "switchyard_cache_lookups",
    "Result cache lookups by kind (exact, semantic) and outcome.",
    ["tier", "kind", "outcome"],
)
cache_savings_usd = Counter(
    "switchyard_cache_savings_usd", "Cost of the calls cache hits saved, in USD.", ["tier", "kind"]
)
provider_rate_limited = Counter(
    "switchyard_provider_rate_limited", "Provider calls answered 429.", ["model", "provider"]
)
retries = Counter("switchyard_retries", "Attempts handed back for a retry, by error code.", ["tier", "code"])
fallbacks = Counter(
    "switchyard_fallbacks",
    "Calls to another model than the job's previous attempt.",
    ["tier", "from_model", "to_model"],
)
capacity_handbacks = Counter(
    "switchyard_capacity_handbacks",
    "Jobs handed back before any call, for want of capacity.",
    ["tier", "reason"],
)
webhook_deliveries = Counter(
    "switchyard_webhook_deliveries",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed: a dead letter).",
    ["event_type", "outcome"],
)
