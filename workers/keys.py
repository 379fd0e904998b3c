"""Every Redis key, channel and queue name Switchyard uses, in one place."""

from __future__ import annotations

from schemas.settings import PRIORITIES


def tier_queue(tier: str, priority: str) -> str:
    """The Celery queue of a tier and priority class, e.g. ``tier.small.live``."""
    return f"tier.{tier}.{priority}"


def tier_queues(tier: str) -> list[str]:
    """Every queue of a tier, one per priority class, highest first."""
    return [tier_queue(tier, priority) for priority in PRIORITIES]


class RedisKeys:
    """Key names under one prefix, so deployments and test runs can share a Redis."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @property
    def auth_epoch(self) -> str:
        """Counter bumped after every change that may refuse a key (revoked, rotated, a tenant
        disabled or enabled): API processes drop the keys they cached when it moves."""
        return f"{self.prefix}:auth:epoch"

    @property
    def job_events(self) -> str:
        """Pub/sub channel: one message per job reaching a final state."""
        return f"{self.prefix}:events:jobs"

    def tenant_events(self, tenant_id: str) -> str:
        """STREAM of a tenant's final-state events, what GET /v1/events reads (workers/event_log.py)."""
        return f"{self.prefix}:events:tenant:{tenant_id}"

    @property
    def tenant_event_notices(self) -> str:
        """Pub/sub channel: the id of a tenant whose event stream just grew."""
        return f"{self.prefix}:events:notices"

    def job_tokens(self, job_id: str) -> str:
        """STREAM of a streaming job's text deltas, short-lived (workers/token_stream.py)."""
        return f"{self.prefix}:tokens:{job_id}"

    def trace_context(self, job_id: str) -> str:
        """STRING: the ``traceparent`` a job's spans continue, while tracing is on (workers/job_spans.py)."""
        return f"{self.prefix}:trace:{job_id}"

    @property
    def maintenance_queue(self) -> str:
        """Celery queue of the reconciler and other housekeeping tasks."""
        return f"{self.prefix}.maintenance"

    @property
    def webhook_queue(self) -> str:
        """Celery queue of webhook delivery attempts and their retry sweep (workers/webhooks/)."""
        return f"{self.prefix}.webhooks"

    def webhook_endpoints(self, tenant_id: str) -> str:
        """JSON list of a tenant's webhook endpoints, cached for the emitting hot path."""
        return f"{self.prefix}:webhooks:endpoints:{tenant_id}"

    @property
    def webhook_repair_mark(self) -> str:
        """When the last webhook repair pass looked up to (epoch seconds, workers/webhooks/repair.py)."""
        return f"{self.prefix}:webhooks:repair-mark"

    @property
    def broker_marker(self) -> str:
        """STRING the reconciler keeps with no expiry: the ``run_id`` of the Redis server it was
        written on. Missing or another server's, Redis lost data, messages included, so queued
        jobs are published again (workers/broker_watch.py)."""
        return f"{self.prefix}:broker:marker"

    def tenant_backlog(self, tier: str) -> str:
        """HASH tenant -> jobs queued in the tier, for fair queue order (workers/dispatch.py)."""
        return f"{self.prefix}:backlog:{tier}"

    @property
    def deferred(self) -> str:
        """ZSET of jobs waiting a short while before they are published (workers/dispatch.py)."""
        return f"{self.prefix}:deferred"

    def exact_entry(self, tenant_id: str, tier: str, key: str) -> str:
        """An exact-cache entry (workers/cache/exact.py)."""
        return f"{self.prefix}:cache:exact:{tenant_id}:{tier}:{key}"

    def exact_pattern(self, tenant_id: str, tier: str | None = None) -> str:
        """SCAN pattern of a tenant's exact-cache entries, or of one of its tiers."""
        return f"{self.prefix}:cache:exact:{tenant_id}:{tier or '*'}:*"

    def tier_of_exact_entry(self, name: bytes | str) -> str:
        text = name.decode() if isinstance(name, bytes) else name
        return text.rsplit(":", 2)[1]

    # The semantic cache (workers/cache/semantic.py): per namespace ``<tenant>:<tier>:<hash>``,
    # ``<prefix>:sem:<namespace>`` is followed by ``:log``, ``:vec`` or ``:entry:<id>``.

    def semantic_log(self, ns: str) -> str:
        """LIST of a semantic namespace's entry ids, in the order they were written."""
        return f"{self.prefix}:sem:{ns}:log"

    def semantic_vectors(self, ns: str) -> str:
        """HASH entry id -> float32 embedding of a semantic namespace."""
        return f"{self.prefix}:sem:{ns}:vec"

    def semantic_entry(self, ns: str, entry_id: str) -> str:
        """A semantic-cache answer (JSON, with the question's text), with its TTL."""
        return f"{self.prefix}:sem:{ns}:entry:{entry_id}"

    def semantic_pattern(self, tenant_id: str, tier: str | None = None) -> str:
        """SCAN pattern of every key of a tenant's semantic namespaces, or of one tier's."""
        return f"{self.prefix}:sem:{tenant_id}:{tier or '*'}:*"

    def semantic_log_pattern(self, tenant_id: str) -> str:
        """SCAN pattern of the logs of a tenant's semantic namespaces, one per namespace."""
        return f"{self.prefix}:sem:{tenant_id}:*:*:log"

    def is_semantic_log(self, name: bytes | str) -> bool:
        """Whether a key found by :meth:`semantic_pattern` is a namespace's log."""
        return (name.decode() if isinstance(name, bytes) else name).endswith(":log")

    def namespace_of_semantic_log(self, name: bytes | str) -> str:
        """The namespace whose log ``name`` is (the inverse of :meth:`semantic_log`)."""
        text = name.decode() if isinstance(name, bytes) else name
        return text.removeprefix(f"{self.prefix}:sem:").removesuffix(":log")

    # The semantic cache watching itself (workers/cache/verification.py, feedback.py): kept
    # apart from ``<prefix>:sem:``, so dropping a tenant's answers keeps what was learnt.

    def semantic_verification(self, ns: str) -> str:
        """HASH of a semantic namespace's checks: ``verified`` and ``disagreed`` since its
        threshold last moved, ``total_verified`` and ``total_disagreed``, and ``threshold``."""
        return f"{self.prefix}:semv:{ns}"

    def semantic_negatives(self, ns: str, query_sha: str) -> str:
        """SET of the cached questions (SHA-256 of their text) never to answer this query."""
        return f"{self.prefix}:semneg:{ns}:{query_sha}"

    def cache_verified_namespaces(self, tenant_id: str) -> str:
        """ZSET namespace -> checks of the tenant's namespaces, for the stats' top list."""
        return f"{self.prefix}:cache:verified:{tenant_id}"

    @property
    def cache_verification_totals(self) -> str:
        """HASH ``<tier>:verified|disagreed|raised`` over every tenant, for the metrics."""
        return f"{self.prefix}:cache:verification"

    def cache_shadow(self, job_id: str) -> str:
        """STRING: the semantic hit a shadow job verifies, until the shadow's answer is compared."""
        return f"{self.prefix}:cache:shadow:{job_id}"

    def cache_feedback(self, job_id: str) -> str:
        """STRING set by the first ``cache: wrong`` feedback on a job, so it counts once."""
        return f"{self.prefix}:cache:feedback:{job_id}"

    def cache_misses(self, tenant_id: str, hour: int) -> str:
        """ZSET ``<tier>:<key>`` -> exact-cache misses of one hour (workers/cache/misses.py)."""
        return f"{self.prefix}:cache:misses:{tenant_id}:{hour}"

    def cache_missed_requests(self, tenant_id: str) -> str:
        """HASH ``<tier>:<key>`` -> the request body that missed."""
        return f"{self.prefix}:cache:missed:{tenant_id}"

    def cache_stats(self, tenant_id: str) -> str:
        """HASH of a tenant's cache counters: ``<tier>:<kind>:hits|misses``, ``<tier>:saved_usd``."""
        return f"{self.prefix}:cache:stats:{tenant_id}"

    @property
    def kill_switches(self) -> str:
        """HASH of the active kill switches, ``s:<id>`` -> JSON, plus ``built``: the version it
        was built from; short TTL, rebuilt from the database when missing (workers/kill_switch_board.py)."""
        return f"{self.prefix}:killswitch:active"

    @property
    def kill_switch_built(self) -> str:
        """STRING: the version the HASH of active kill switches was built from, same TTL as the HASH."""
        return f"{self.prefix}:killswitch:built"

    @property
    def kill_switch_version(self) -> str:
        """STRING: a fresh token written after every change of the kill switches, no expiry."""
        return f"{self.prefix}:killswitch:version"

    def fault(self, name: str) -> str:
        """A fault-injection flag, read only when the test setting enables faults."""
        return f"{self.prefix}:fault:{name}"

    def limit_bucket(self, bucket: str) -> list[str]:
        """The six keys of a rate-limit bucket (see workers/ratelimit/common.lua).

        The ``{...}`` hash tag keeps a bucket's keys on one Redis Cluster slot, as a script needs.
        """
        base = f"{self.prefix}:rl:{{{bucket}}}"
        return [
            f"{base}:req",
            f"{base}:req:amt",
            f"{base}:tok",
            f"{base}:tok:amt",
            f"{base}:state",
            f"{base}:inflight",
        ]

    def budget_counter(self, budget_id: str, period: str) -> str:
        """HASH of a budget's period: spent and reserved nano-dollars and tokens, and each held
        reservation's amounts (workers/budgets/counters.lua)."""
        return f"{self.prefix}:budget:{budget_id}:{period}"

    def budget_holds(self, budget_id: str, period: str) -> str:
        """ZSET of a budget period's reservations, scored by when they expire (a dead worker's)."""
        return f"{self.prefix}:budget:{budget_id}:{period}:holds"

    def budget_rebuild_lock(self, budget_id: str, period: str) -> str:
        """STRING held while one process rebuilds a lost budget counter from the database."""
        return f"{self.prefix}:budget:{budget_id}:{period}:rebuilding"

    def budget_threshold(self, budget_id: str, period: str, threshold: float) -> str:
        """STRING set once when a budget's period crosses a soft threshold (workers/budgets/thresholds.py)."""
        return f"{self.prefix}:budget:{budget_id}:{period}:threshold:{threshold:g}"
