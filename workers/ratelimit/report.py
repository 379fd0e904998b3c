"""The limits as operators see them: per model bucket and per tier, from Redis.

``GET /v1/limits`` shows this report, admission control decides from it, and
:class:`LimitsCollector` exports the same figures as Prometheus gauges.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.settings import Settings, TierConfig
from workers.dispatch import Dispatcher
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.policy import model_limits

# Tokens a queued job is expected to cost when the drain time is estimated from a TPM limit:
# its tier's default max_tokens plus this much prompt.
EXPECTED_PROMPT_TOKENS = 100


@dataclass(frozen=True)
class ModelLimits:
    """One (provider, model) bucket: configured limits, limits in force, use and pause."""

    provider: str
    model: str
    aliases: list[str]
    window_s: float
    rpm: int | None
    tpm: int | None
    max_concurrency: int | None
    factor: float
    requests_used: int
    tokens_used: int
    in_flight: int
    requests_headroom: int | None
    tokens_headroom: int | None
    paused_s: float

    def jobs_per_second(self, tokens_per_job: int) -> float:
        """How fast this model can take jobs under its limits in force (inf if unlimited)."""
        rates = [math.inf]
        if self.rpm:
            rates.append(self.rpm * self.factor / self.window_s)
        if self.tpm:
            rates.append(self.tpm * self.factor / self.window_s / max(1, tokens_per_job))
        return min(rates)


@dataclass(frozen=True)
class TierLimits:
    """One tier: what is queued, how fast its chain can drain it, and whether it is full.

    ``queued`` may be counted up between reads (admission does), and the drain times follow.
    """

    tier: str
    models: list[str]
    queued: dict[str, int]
    jobs_per_second: float | None  # None: some model of the chain has no limit
    paused_s: float  # until the first model of the chain may be called again
    max_queue_seconds: float
    max_queue_depth: int

    @property
    def total_queued(self) -> int:
        return sum(self.queued.values())

    @property
    def live_drain_s(self) -> float:
        """Seconds to drain the live queue (live goes before every other class)."""
        return self._drain(self.queued["live"])

    @property
    def total_drain_s(self) -> float:
        return self._drain(self.total_queued)

    @property
    def live_saturated(self) -> bool:
        return self.live_drain_s > self.max_queue_seconds

    @property
    def full(self) -> bool:
        return self.total_queued >= self.max_queue_depth

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "live_drain_s": round(self.live_drain_s, 3),
            "total_drain_s": round(self.total_drain_s, 3),
            "live_saturated": self.live_saturated,
            "full": self.full,
        }

    def _drain(self, depth: int) -> float:
        if depth == 0 or not self.jobs_per_second:
            return 0.0
        return self.paused_s + depth / self.jobs_per_second


def model_report(settings: Settings, limiter: Limiter) -> dict[str, ModelLimits]:
    """Every limited (provider, model) bucket, by bucket name."""
    aliases: dict[str, list[str]] = {}
    for alias, model in settings.models.items():
        aliases.setdefault(model.bucket, []).append(alias)
    report = {}
    for bucket, names in aliases.items():
        model = settings.models[names[0]]
        limits = model_limits(model, settings.rate_limits)
        if not limits.limited:
            continue
        state = limiter.snapshot(bucket, limits)
        report[bucket] = ModelLimits(
            provider=model.provider,
            model=model.model,
            aliases=names,
            window_s=limits.window_s,
            rpm=model.rpm,
            tpm=model.tpm,
            max_concurrency=model.max_concurrency,
            factor=state.factor,
            requests_used=state.requests_used,
            tokens_used=state.tokens_used,
            in_flight=state.in_flight,
            requests_headroom=_headroom(model.rpm, state.factor, state.requests_used),
            tokens_headroom=_headroom(model.tpm, state.factor, state.tokens_used),
            paused_s=round(state.paused_s, 3),
        )
    return report


def tier_report(
    settings: Settings, name: str, tier: TierConfig, dispatcher: Dispatcher, models: dict[str, ModelLimits]
) -> TierLimits:
    """A tier's queue depth and drain time against the limits of its chain."""
    queued = dispatcher.queue_depths(name)
    rate, pause = 0.0, math.inf
    for alias in tier.models:
        bucket = models.get(settings.models[alias].bucket)
        if bucket is None:  # an unlimited model: no drain estimate for the tier
            rate = math.inf
            break
        rate += bucket.jobs_per_second(tier.default_max_tokens + EXPECTED_PROMPT_TOKENS)
        pause = min(pause, bucket.paused_s)
    return TierLimits(
        tier=name,
        models=list(tier.models),
        queued=queued,
        jobs_per_second=None if math.isinf(rate) else rate,
        paused_s=0.0 if math.isinf(pause) else pause,
        max_queue_seconds=tier.max_queue_seconds,
        max_queue_depth=tier.max_queue_depth,
    )


def limits_report(settings: Settings, limiter: Limiter, dispatcher: Dispatcher) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    models = model_report(settings, limiter)
    tiers = [tier_report(settings, name, tier, dispatcher, models) for name, tier in settings.tiers.items()]
    return {
        "window_s": settings.rate_limits.window_s,
        "models": [asdict(m) for m in models.values()],
        "tiers": [tier.to_json() for tier in tiers],
    }


def _headroom(limit: int | None, factor: float, used: int) -> int | None:
    if not limit:
        return None
    return max(0, max(1, math.floor(limit * factor)) - used)


class LimitsCollector(Collector):
    """Prometheus gauges of the same report, for the metrics endpoint."""

    def __init__(self, settings: Settings, limiter: Limiter, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.limiter = limiter
        self.dispatcher = dispatcher

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = limits_report(self.settings, self.limiter, self.dispatcher)
        model_labels = ["provider", "model"]
        gauges = {
            name: GaugeMetricFamily(f"switchyard_ratelimit_{name}", doc, labels=model_labels)
            for name, doc in (
                ("requests_headroom", "Requests left in the current window."),
                ("tokens_headroom", "Tokens left in the current window."),
                ("in_flight", "Calls in flight."),
                ("paused_seconds", "Seconds until a provider pause ends."),
                ("factor", "Share of the configured limits in force (AIMD)."),
            )
        }
        for model in report["models"]:
            labels = [model["provider"], model["model"]]
            gauges["requests_headroom"].add_metric(labels, model["requests_headroom"] or 0)
            gauges["tokens_headroom"].add_metric(labels, model["tokens_headroom"] or 0)
            gauges["in_flight"].add_metric(labels, model["in_flight"])
            gauges["paused_seconds"].add_metric(labels, model["paused_s"])
            gauges["factor"].add_metric(labels, model["factor"])
        queued = GaugeMetricFamily("switchyard_queue_depth", "Jobs waiting.", labels=["tier", "priority"])
        drain = GaugeMetricFamily("switchyard_queue_drain_seconds", "Estimated drain time.", labels=["tier"])
        for tier in report["tiers"]:
            for priority, depth in tier["queued"].items():
                queued.add_metric([tier["tier"], priority], depth)
            drain.add_metric([tier["tier"]], tier["total_drain_s"])
        yield from gauges.values()
        yield queued
        yield drain
