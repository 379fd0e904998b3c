"""Prometheus export of the semantic cache's checks, per tier over every tenant.

Labels are the tier only: a tenant id never becomes a label (unbounded, and another tenant's
business). The figures come from one HGETALL of the totals hash that
workers/cache/verification.py keeps; the metrics endpoint registers this collector.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workers.cache.verification import CacheVerification, false_hit_rate


class SemanticChecksCollector(Collector):
    """Checked hits, disagreements, threshold raises and the estimated false-hit rate per tier."""

    def __init__(self, verification: CacheVerification) -> None:
        self.verification = verification

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        prefix = "switchyard_semantic_cache"
        verified = CounterMetricFamily(
            f"{prefix}_verified", "Semantic hits checked by a shadow call or feedback.", labels=["tier"]
        )
        disagreed = CounterMetricFamily(
            f"{prefix}_disagreed", "Checked semantic hits whose answer was wrong.", labels=["tier"]
        )
        raised = CounterMetricFamily(
            f"{prefix}_threshold_raises", "Namespace thresholds raised by false hits.", labels=["tier"]
        )
        rate = GaugeMetricFamily(
            f"{prefix}_estimated_false_hit_rate", "Disagreed / verified checks, ever.", labels=["tier"]
        )
        for tier, counts in sorted(self.verification.totals().items()):
            verified.add_metric([tier], counts["verified"])
            disagreed.add_metric([tier], counts["disagreed"])
            raised.add_metric([tier], counts["raised"])
            rate.add_metric([tier], false_hit_rate(counts["verified"], counts["disagreed"]))
        yield from (verified, disagreed, raised, rate)
