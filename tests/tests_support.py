"""Helpers the test modules share: test settings and tenants with keys."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from redis import Redis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.keys import create_key, create_tenant
from infra.launch import ProcessGroup, emulator_argv, free_port, wait_http
from schemas.settings import Settings, load_settings
from workers.celery_app import create_celery
from workers.dispatch import priority_keys
from workers.keys import tier_queues
from workers.migrate import upgrade
from workers.runtime import Runtime

TEST_CONFIG = Path(__file__).parent / "switchyard-test.toml"
POSTGRES_ADMIN_URL = os.environ.get("SWITCHYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("SWITCHYARD_TEST_REDIS", "redis://127.0.0.1:6379/9")


def database_url_for(request: pytest.FixtureRequest, tmp: Path) -> str:
    """SQLite under ``tmp``, or this run's PostgreSQL database, by the fixture's param."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp / 'switchyard.db'}"
    return str(request.getfixturevalue("postgres_url"))


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_test_settings(tmp: Path, redis_url: str, database_url: str = "", **overrides: Any) -> Settings:
    """Settings from the test config with a private var dir, key prefix and database."""
    values: dict[str, Any] = {
        "config_file": TEST_CONFIG,
        "var_dir": tmp,
        "redis_url": redis_url,
        "database_url": database_url,
        "key_prefix": f"sytest{uuid.uuid4().hex[:8]}",
    }
    return load_settings(**{**values, **overrides})


def new_tenant_key(engine: Engine, scopes: set[str] | None = None) -> tuple[str, str]:
    """A new tenant and an API key for it: (tenant_id, secret)."""
    with Session(engine) as session:
        tenant = create_tenant(session, f"tenant-{uuid.uuid4().hex[:8]}")
        session.flush()
        secret = create_key(session, tenant.id, scopes or {"submit", "read"})
        session.commit()
        return tenant.id, secret


def queued_job_ids(redis: Redis, queue: str) -> list[str]:
    """The job ids on a kombu Redis queue, every priority level, in the order workers take them.

    Each message is a JSON envelope whose base64 body holds the task's args.
    """
    ids = []
    for key in priority_keys(queue):
        for raw in reversed(redis.lrange(key, 0, -1)):  # LPUSH in, BRPOP out
            envelope = json.loads(raw)
            assert envelope["headers"]["task"] == "switchyard.run_job"
            args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
            ids.extend(args)
    return ids


@contextmanager
def tier_runtime(
    tmp: Path, redis_url: str, database_url: str, tier: str, models: list[str], **overrides: Any
) -> Iterator[Runtime]:
    """A worker runtime whose one tier, ``tier``, serves ``models``, on the migrated test database.

    Give the tier a name of this test alone: its queues then hold only this test's messages.
    They and the runtime's keys are removed afterwards.
    """
    settings = make_test_settings(tmp, redis_url, database_url, tiers={tier: {"models": models}}, **overrides)
    upgrade(settings)
    rt = Runtime(settings=settings, celery=create_celery(settings))
    try:
        yield rt
    finally:
        delete_tier_queues(rt.redis, [tier], settings.key_prefix)
        rt.engine.dispose()
        rt.redis.close()


def delete_tier_queues(redis: Redis, tiers: list[str], key_prefix: str) -> None:
    """Drop the tiers' queues (every priority level) and every key under ``key_prefix``."""
    queues = [key for tier in tiers for queue in tier_queues(tier) for key in priority_keys(queue)]
    redis.delete(*queues, *redis.keys(f"*{key_prefix}*"))


# What a direct call to the emulator's /v1 routes sends: a key, as to a provider
# (infra/emulator/auth.py). Switchyard's adapters send their configured key themselves.
EMULATOR_KEY = {"Authorization": "Bearer emulator-key"}


@contextmanager
def running_emulator(log_dir: Path) -> Iterator[str]:
    """The provider emulator as a subprocess on a free port; yields its base URL."""
    port = free_port()
    processes = ProcessGroup(log_dir=log_dir, env=dict(os.environ))
    processes.start("emulator", emulator_argv(port))
    try:
        wait_http(f"http://127.0.0.1:{port}/emulator/stats", alive=processes.check_alive)
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop_all()


def completion_body(
    model: str, content: str, prompt_tokens: int, completion_tokens: int, created: int = 1
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` body with one stopped answer and its usage."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
