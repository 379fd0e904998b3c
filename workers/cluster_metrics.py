"""Cluster-wide gauges, read from Redis and the database at scrape time.

A module beside ``workers/metrics/`` rather than in it: it reads the caches, budgets and
webhooks, which count into ``workers.metrics`` themselves, and imports go one way.

Only the API's ``/metrics`` exports them (:func:`cluster_registry`): every worker node would
read the same figures, and Prometheus would sum copies. Budgets and dead letters come from
the stores the admin API reads, so a scrape shows what ``GET /v1/budgets`` shows.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from schemas.settings import Settings
from schemas.spend_tables import Budget
from schemas.tables import WebhookDelivery
from workers.budgets.control import BudgetControl
from workers.budgets.manage import with_figures
from workers.cache.metrics import SemanticChecksCollector
from workers.cache.results import ResultCache
from workers.dispatch import Dispatcher
from workers.keys import RedisKeys
from workers.kill_switch_board import KillSwitchBoard
from workers.ratelimit.limiter import Limiter
from workers.ratelimit.report import LimitsCollector
from workers.webhooks.deliveries import FAILED


class DeadLettersCollector(Collector):
    """``switchyard_webhook_dead_letters``: deliveries that used up their retries (failed)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with Session(self.engine) as session:
            count = session.exec(
                select(func.count()).select_from(WebhookDelivery).where(col(WebhookDelivery.status) == FAILED)
            ).one()
        yield GaugeMetricFamily(
            "switchyard_webhook_dead_letters", "Webhook deliveries in status failed.", count
        )


class BudgetsCollector(Collector):
    """Spent, remaining and limit in USD of every budget's current period, by budget id."""

    def __init__(self, engine: Engine, control: BudgetControl) -> None:
        self.engine = engine
        self.control = control

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["budget", "period"]
        spent = GaugeMetricFamily(
            "switchyard_budget_spent_usd", "Spent in the current period.", labels=labels
        )
        remaining = GaugeMetricFamily(
            "switchyard_budget_remaining_usd", "Left in the current period (USD limits only).", labels=labels
        )
        limit = GaugeMetricFamily("switchyard_budget_limit_usd", "The budget's USD limit.", labels=labels)
        with Session(self.engine) as session:
            rows = list(session.exec(select(Budget).order_by(col(Budget.created_at))).all())
            statuses = with_figures(session, self.control, rows) if rows else []
        for status in statuses:
            names = [status.id, status.period]
            spent.add_metric(names, status.spent_usd)
            if status.limit_usd is not None:
                limit.add_metric(names, status.limit_usd)
            if status.remaining_usd is not None:
                remaining.add_metric(names, status.remaining_usd)
        yield from (spent, remaining, limit)


class KillSwitchesCollector(Collector):
    """``switchyard_kill_switches_active``: the switches in force now."""

    def __init__(self, board: KillSwitchBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "switchyard_kill_switches_active", "Kill switches in force.", len(self.board.active())
        )


def cluster_registry(
    settings: Settings,
    engine: Engine,
    redis: Redis,
    limiter: Limiter,
    dispatcher: Dispatcher,
    results: ResultCache,
    budgets: BudgetControl,
) -> CollectorRegistry:
    """A registry of every cluster-wide collector, for the API's ``/metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LimitsCollector(settings, limiter, dispatcher))
    registry.register(SemanticChecksCollector(results.verification))
    registry.register(DeadLettersCollector(engine))
    registry.register(BudgetsCollector(engine, budgets))
    registry.register(KillSwitchesCollector(KillSwitchBoard(redis, RedisKeys(settings.key_prefix), engine)))
    return registry
