"""The Celery entry point: ``celery -A workers.app worker`` builds the app from Settings.

It is the top of the worker side, so it also wires what needs both the app and the runtime:
each prefork process builds its runtime as it starts (``worker_process_init``). Before any
other import it prepares the node's metrics directory (workers/metrics/node.py).
"""

import sys
from typing import Any

from schemas.settings import load_settings
from workers.metrics.node import prepare_node

# First of all: a worker node serving metrics needs its multiprocess directory set before
# anything imports prometheus_client, and before the prefork pool forks (workers/metrics/node.py).
SETTINGS = load_settings()
prepare_node(sys.argv, SETTINGS.metrics.worker_port)

import structlog  # noqa: E402
from celery.signals import worker_process_init  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from workers.celery_app import create_celery  # noqa: E402
from workers.logging import configure_logging  # noqa: E402
from workers.metrics import worker_step  # noqa: E402
from workers.runtime import runtime_for  # noqa: E402

configure_logging()
app = create_celery(SETTINGS)
worker_step.install(app)  # --metrics-port and the node's metrics endpoint


@worker_process_init.connect
def _warm_up_pool_process(**_: Any) -> None:
    # Each prefork process builds its runtime before its first job, not during it.
    try:
        runtime_for(app).warm_up()
    except (SQLAlchemyError, RedisError, OSError) as exc:  # best effort: the first job retries
        structlog.get_logger("switchyard.worker").warning("warm_up_failed", error=str(exc))
