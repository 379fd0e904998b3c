"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ServicesDep
from api.errors import error_response
from schemas.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    """Answers while the process can serve requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database and Redis answer")
async def readyz(services: ServicesDep) -> object:
    """200 when the database and Redis both answer, else 503 naming what is down."""
    checks = await run_in_threadpool(_check_dependencies, services)
    if all(ok for ok in checks.values()):
        return {"status": "ok", "checks": checks}
    down = ", ".join(name for name, ok in checks.items() if not ok)
    return error_response(ServiceUnavailable(f"Not ready: {down} not answering.", checks=checks))


def _check_dependencies(services: ServicesDep) -> dict[str, bool]:
    checks = {"database": True, "redis": True}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        checks["database"] = False
    try:
        services.redis.ping()
    except (RedisError, OSError):
        checks["redis"] = False
    return checks
