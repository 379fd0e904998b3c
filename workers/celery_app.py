"""The Celery app factory: queues from config and the design's reliability settings."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready
from kombu import Queue

from schemas.settings import Settings
from workers import tracing
from workers.broker import TRANSPORT
from workers.deferred_release import DeferredRelease
from workers.dispatch import PRIORITY_STEPS
from workers.keys import RedisKeys, tier_queues

TASK_MODULES = [
    "tasks.run_job",
    "tasks.reconcile",
    "tasks.precompute",
    "tasks.poll_provider_batches",
    "tasks.deliver_webhook",
    "tasks.retry_webhooks",
]


class SwitchyardCelery(Celery):
    """A Celery app that carries the Settings it was built from."""

    settings: Settings


def create_celery(settings: Settings) -> SwitchyardCelery:
    """A Celery app with one queue per tier and priority, acks late, prefetch one."""
    keys = RedisKeys(settings.key_prefix)
    app = SwitchyardCelery("switchyard", broker=settings.redis_url, include=TASK_MODULES)
    app.settings = settings
    if settings.redis_url.startswith("redis://"):
        app.conf.broker_transport = TRANSPORT  # kombu's, sharing one client (workers/broker.py)
    queues = [Queue(name, routing_key=name) for tier in settings.tiers for name in tier_queues(tier)]
    app.conf.update(
        task_queues=[
            *queues,
            Queue(keys.maintenance_queue, routing_key=keys.maintenance_queue),
            Queue(keys.webhook_queue, routing_key=keys.webhook_queue),
        ],
        task_default_queue=keys.maintenance_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        # One Redis list per priority step, so fair lanes (workers/dispatch.py) are exact.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "priority_steps": PRIORITY_STEPS,
        },
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        # Task events cost a Redis publish each; Flower switches them on while it watches.
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        beat_schedule={
            "reconcile": {
                "task": "switchyard.reconcile",
                "schedule": settings.reconcile_interval_s,
                "options": {"queue": keys.maintenance_queue, "expires": settings.reconcile_interval_s},
            },
            "precompute": {
                "task": "switchyard.precompute",
                "schedule": settings.precompute.scan_interval_s,
                "options": {"queue": keys.maintenance_queue, "expires": settings.precompute.scan_interval_s},
            },
            "poll_provider_batches": {  # the provider Batch API lane (docs/provider-batches.md)
                "task": "switchyard.poll_provider_batches",
                "schedule": settings.provider_batches.poll_interval_s,
                "options": {
                    "queue": keys.maintenance_queue,
                    "expires": settings.provider_batches.poll_interval_s,
                },
            },
            "retry_webhooks": {  # webhook retries are scheduled from the database (docs/webhooks.md)
                "task": "switchyard.retry_webhooks",
                "schedule": settings.webhooks.sweep_interval_s,
                "options": {"queue": keys.webhook_queue, "expires": settings.webhooks.sweep_interval_s},
            },
        },
    )
    app.steps["worker"].add(DeferredRelease)
    return app


def broker_visibility_timeout(app: Celery) -> float:
    """The visibility timeout the broker channel actually uses."""
    with app.connection_for_read() as connection:
        return float(connection.default_channel.visibility_timeout)


@worker_init.connect
@worker_process_init.connect
def _start_tracing(**_: Any) -> None:
    """Traces when OTEL_* ask for them (workers/tracing.py): in the worker's main process, which
    runs the tasks of a threads or solo pool, and again in each prefork child (a no-op there
    unless the fork lost it)."""
    tracing.start("switchyard-worker")


@worker_process_shutdown.connect
def _stop_tracing(**_: Any) -> None:
    """A prefork child leaves by ``os._exit``, past the exit hook: send its last spans now."""
    tracing.stop()


@worker_ready.connect
def _assert_visibility_timeout(sender: Any = None, **_: Any) -> None:
    app = sender.app if sender is not None else None
    if not isinstance(app, SwitchyardCelery) or not app.conf.broker_url.startswith("redis"):
        return
    actual = broker_visibility_timeout(app)
    expected = app.settings.visibility_timeout_s
    if actual != expected or actual <= app.settings.task_time_limit_s:
        raise RuntimeError(
            f"Redis visibility timeout is {actual}s, expected {expected}s above the hard time "
            f"limit {app.settings.task_time_limit_s}s; check broker_transport_options."
        )
