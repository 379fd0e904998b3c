"""The processes ``switchyard up`` runs, derived from config: one worker per tier.

The Procfile is written from the same table (cli/procfile.py). With ``metrics.worker_port``
set, each worker node's line carries its own ``--metrics-port``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from infra.launch import (
    api_argv,
    celery_argv,
    emulator_argv,
    local_worker_argv,
    webhook_worker_argv,
    worker_argv,
)
from schemas.settings import Settings
from workers.keys import RedisKeys, tier_queues
from workers.providers.registry import adapter_traits


def tier_worker_argv(
    settings: Settings, tier: str, concurrency: int | None = None, node: str | None = None
) -> list[str]:
    """The celery command line of a worker for one tier (it also serves housekeeping).

    A tier with a local model gets a threads worker with as many threads as its provider's
    ``max_batch_size``, so that many jobs' calls can meet in one batch. ``node`` is the node
    name before ``@host``; the tier's own name by default, as ``switchyard up`` names it.
    """
    queues = tier_queues(tier)
    queues.append(RedisKeys(settings.key_prefix).maintenance_queue)
    local = [
        settings.providers[settings.models[alias].provider]
        for alias in settings.tiers[tier].models
        if adapter_traits(settings.providers[settings.models[alias].provider].kind).runs_in_worker
    ]
    if local:
        return local_worker_argv(queues, concurrency or max(p.max_batch_size for p in local), node or tier)
    return worker_argv(queues, concurrency or 4, node or tier)


def standalone_node(tier: str, pid: int) -> str:
    """The node name of a worker started by ``switchyard worker``, e.g. ``small-cli-4242``.

    Unlike ``switchyard up``'s ``small@host``, it carries the role and the process id, so
    Flower and ``celery inspect`` tell each hand-started worker from the others on the host.
    """
    return f"{tier}-cli-{pid}"


def process_table(settings: Settings) -> dict[str, list[str]]:
    """Name -> command line of every process of the embedded deployment."""
    api = urlsplit(settings.api_url)
    table = {
        "web": api_argv(api.port or 8000, api.hostname or "127.0.0.1"),
        # Beat logs every task it sends at INFO, and the webhook retry sweep is due every second:
        # at WARNING its lines do not bury the workers' (which log what each pass did).
        "beat": celery_argv("beat", "-s", str(settings.var_dir / "celerybeat-schedule"), log_level="WARNING"),
        "flower": celery_argv("flower", "--address=127.0.0.1", "--port=5555", log_level=None),
    }
    for tier in settings.tiers:
        table[f"worker-{tier}"] = tier_worker_argv(settings, tier)
    table["worker-webhooks"] = webhook_worker_argv(RedisKeys(settings.key_prefix).webhook_queue)
    with_metrics_ports(table, settings.metrics.worker_port)
    if settings.emulator_port:
        table["emulator"] = emulator_argv(settings.emulator_port)
    return table


def with_metrics_ports(table: dict[str, list[str]], base_port: int) -> None:
    """Give each worker node of ``table`` its own metrics port, ``base_port`` and up, in table
    order (0: metrics off). One machine cannot serve two nodes on one port
    (docs/observability.md)."""
    if not base_port:
        return
    workers = [name for name in table if name.startswith("worker-")]
    for index, name in enumerate(workers):
        table[name] = [*table[name], "--metrics-port", str(base_port + index)]
