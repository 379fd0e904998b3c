"""The Celery entry point: ``celery -A workers.app worker`` builds the app from Settings.

It is the top of the worker side, so it also wires what needs both the app and the runtime:
each prefork process builds its runtime as it starts (``worker_process_init``).
"""

from typing import Any

import structlog
from celery.signals import worker_process_init
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from schemas.settings import load_settings
from workers.celery_app import create_celery
from workers.logging import configure_logging
from workers.runtime import runtime_for

configure_logging()
app = create_celery(load_settings())


@worker_process_init.connect
def _warm_up_pool_process(**_: Any) -> None:
    # Each prefork process builds its runtime before its first job, not during it.
    try:
        runtime_for(app).warm_up()
    except (SQLAlchemyError, RedisError, OSError) as exc:  # best effort: the first job retries
        structlog.get_logger("switchyard.worker").warning("warm_up_failed", error=str(exc))
