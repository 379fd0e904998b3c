"""The worker node's metrics endpoint (a bootstep of the main process) and the pool hooks.

The node serves on the port :func:`workers.metrics.node.prepare_node` chose (``--metrics-port``
or ``metrics.worker_port``; 0: off). A prefork child that exits is marked dead, so its files
stop counting as live (only gauges care; its counters keep counting, as they must).
"""

from __future__ import annotations

from typing import Any

import click
import structlog
from celery import Celery, bootsteps
from celery.signals import worker_process_shutdown
from prometheus_client import multiprocess

from workers.metrics import node
from workers.metrics.exposition import serve_node

log = structlog.get_logger("switchyard.metrics")


class MetricsEndpoint(bootsteps.StartStopStep):
    """Serves the node's metrics over HTTP while the worker runs."""

    def __init__(self, worker: Any, metrics_port: int | None = None, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.server: Any = None

    def start(self, worker: Any) -> None:
        port = node.node_port
        if not port:
            return
        host = worker.app.settings.metrics.worker_host
        try:
            self.server, _ = serve_node(port, host)
        except OSError as exc:  # the port is taken: jobs still run, the node is not scraped
            log.error("metrics_port_unavailable", port=port, host=host, error=str(exc))
            return
        log.info("metrics_serving", port=port, host=host, node=worker.hostname)

    def stop(self, worker: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None


def install(app: Celery) -> None:
    """Add the ``--metrics-port`` worker option and the endpoint step to ``app``."""
    app.user_options["worker"].add(
        click.Option(
            [node.PORT_OPTION], type=int, default=None, help="Serve this node's Prometheus metrics here."
        )
    )
    app.steps["worker"].add(MetricsEndpoint)


@worker_process_shutdown.connect
def _mark_child_dead(pid: int | None = None, **_: Any) -> None:
    if node.node_port and pid is not None:
        multiprocess.mark_process_dead(pid)
