"""A revoked key, and a disabled tenant's key, are refused by every API process within one
second: two real uvicorn processes on one database and Redis, the key used on both first (so
both hold it in their principal cache), the change made through one, both polled."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from e2e_stack import stack_env
from redis import Redis
from tests_support import make_test_settings

from api import tenancy
from infra.launch import ProcessGroup, api_argv, free_port, wait_http
from schemas.admin import KeyCreate, TenantCreate
from schemas.settings import Settings
from workers.audit import CLI
from workers.db import make_engine, session_scope
from workers.migrate import upgrade

LIMIT_S = 1.0


@dataclass
class TwoApis:
    settings: Settings
    urls: list[str]

    def keys(self, scopes: list[str]) -> tuple[str, str, str, str]:
        """A new tenant with an admin key and another key: tenant id, admin secret, key id, secret."""
        engine = make_engine(self.settings)
        with session_scope(engine) as session:
            tenant = tenancy.add_tenant(session, CLI, TenantCreate(name=f"rev-{uuid.uuid4().hex[:8]}"))
            _, admin = tenancy.add_key(session, CLI, self.settings, tenant.id, KeyCreate(scopes=["admin"]))
            row, secret = tenancy.add_key(
                session, CLI, self.settings, tenant.id, KeyCreate.model_validate({"scopes": scopes})
            )
        engine.dispose()
        return tenant.id, admin, row.id, secret

    def platform(self) -> str:
        engine = make_engine(self.settings)
        with session_scope(engine) as session:
            _, secret = tenancy.add_platform_key(session, CLI, "e2e")
        engine.dispose()
        return secret


def status(url: str, secret: str) -> int:
    return httpx.get(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {secret}"}, timeout=5).status_code


def refused_after(urls: list[str], secret: str, refused: int, since: float) -> list[float]:
    """Per API process, the seconds from ``since`` until it first answered ``refused``; polls
    them in turn until all have, or ``3 * LIMIT_S`` has passed."""
    seen: dict[str, float] = {}
    while len(seen) < len(urls) and time.monotonic() - since < 3 * LIMIT_S:
        for url in urls:
            if url not in seen and status(url, secret) == refused:
                seen[url] = time.monotonic() - since
        time.sleep(0.01)
    assert len(seen) == len(urls), f"not refused everywhere: {seen}"
    for url in urls:  # and it stays refused
        assert status(url, secret) == refused
    return [seen[url] for url in urls]


@pytest.fixture(scope="module")
def apis(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[TwoApis]:
    """Two API processes (no workers: nothing here runs a job) on one SQLite file and Redis."""
    var_dir = tmp_path_factory.mktemp("revocation")
    settings = make_test_settings(var_dir, redis_url)
    upgrade(settings)
    processes = ProcessGroup(
        var_dir, stack_env(var_dir, redis_url, settings.key_prefix, "http://127.0.0.1:9")
    )
    urls = []
    for index in range(2):
        port = free_port()
        processes.start(f"api-{index}", api_argv(port, log_level="warning"))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_http(f"{url}/readyz", alive=processes.check_alive)
        yield TwoApis(settings, urls)
    finally:
        processes.stop_all()
        client = Redis.from_url(redis_url)
        names = client.keys(f"*{settings.key_prefix}*")
        if names:
            client.delete(*names)


def test_a_revoked_key_is_refused_by_every_api_process_within_a_second(apis: TwoApis) -> None:
    _, admin, key_id, secret = apis.keys(["read"])
    for _ in range(3):  # both processes hold the key in their cache now
        assert [status(url, secret) for url in apis.urls] == [200, 200]

    revoked = httpx.delete(f"{apis.urls[0]}/v1/keys/{key_id}", headers={"Authorization": f"Bearer {admin}"})
    start = time.monotonic()

    assert revoked.status_code == 200, revoked.text
    latencies = refused_after(apis.urls, secret, 401, start)
    print(f"revocation_latency_s={max(latencies):.3f} per_process={[round(s, 3) for s in latencies]}")
    assert max(latencies) < LIMIT_S


def test_a_disabled_tenants_keys_are_refused_by_every_api_process_within_a_second(apis: TwoApis) -> None:
    tenant_id, _, _, secret = apis.keys(["read"])
    platform = apis.platform()
    assert [status(url, secret) for url in apis.urls] == [200, 200]

    disabled = httpx.post(
        f"{apis.urls[1]}/v1/admin/tenants/{tenant_id}/disable",
        headers={"Authorization": f"Bearer {platform}"},
    )
    start = time.monotonic()

    assert disabled.status_code == 200, disabled.text
    latencies = refused_after(apis.urls, secret, 403, start)
    print(f"disable_latency_s={max(latencies):.3f}")
    assert max(latencies) < LIMIT_S
