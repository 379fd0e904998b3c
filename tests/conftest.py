"""Shared fixtures: real Redis, real PostgreSQL and SQLite, settings, tenants and keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import e2e, stack  # noqa: F401  (fixtures of the end-to-end tests)
from redis import Redis
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import col
from tests_support import (
    REDIS_TEST_URL,
    database_url_for,
    fresh_postgres_database,
    make_test_settings,
    new_tenant_key,
)
from webhook_receiver import WebhookReceiverServer

from schemas.settings import Settings
from schemas.tables import Job
from workers.db import make_engine, session_scope
from workers.migrate import upgrade

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database for this test run (db 9 by default)."""
    Redis.from_url(REDIS_TEST_URL).ping()
    return REDIS_TEST_URL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    with fresh_postgres_database("switchyard_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    return database_url_for(request, tmp_path)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """Test settings on the parametrised database, migrated."""
    configured = make_test_settings(tmp_path, redis_url, database_url)
    upgrade(configured)
    return configured


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the migrated test database."""
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def receivers() -> Iterator[list[WebhookReceiverServer]]:
    """Webhook receivers a test started (append them), stopped at its end."""
    started: list[WebhookReceiverServer] = []
    yield started
    for receiver in started:
        receiver.stop()


@pytest.fixture
def tenant(engine: Engine) -> Iterator[str]:
    """A fresh tenant; its jobs are removed afterwards so no sweep elsewhere finds them."""
    tenant_id, _ = new_tenant_key(engine)
    yield tenant_id
    with session_scope(engine) as session:
        session.execute(delete(Job).where(col(Job.tenant_id) == tenant_id))
