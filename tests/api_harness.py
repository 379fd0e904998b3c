"""The in-process API that the API test modules share: one TestClient on two tiers of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy.engine import Engine
from tests_support import delete_tier_queues, make_test_settings, new_tenant_key

from api.main import create_app
from api.services import Services
from schemas.settings import Settings
from workers.migrate import upgrade


@dataclass
class ApiHarness:
    """An in-process API with its settings and two tiers whose queues only it fills."""

    client: TestClient
    settings: Settings
    tier: str
    other_tier: str

    @property
    def services(self) -> Services:
        services: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return services

    @property
    def engine(self) -> Engine:
        return self.services.engine

    @property
    def redis(self) -> Redis:
        return self.services.redis

    def tenant(self, scopes: set[str] | None = None) -> dict[str, str]:
        """Authorization headers for a new tenant's key."""
        _, secret = new_tenant_key(self.engine, scopes)
        return {"Authorization": f"Bearer {secret}"}


Harness = TypeVar("Harness", bound=ApiHarness)


@contextmanager
def open_api(
    harness: type[Harness],
    tmp: Path,
    redis_url: str,
    database_url: str,
    tiers: dict[str, list[str]],
    **overrides: Any,
) -> Iterator[Harness]:
    """An API whose first tier serves ``tiers["tier"]`` and second ``tiers["other_tier"]`` (model
    aliases); both get fresh names, and their queues are deleted afterwards."""
    tier, other_tier = (f"api{uuid.uuid4().hex[:8]}" for _ in range(2))
    models = {"tier": tier, "other_tier": other_tier}
    config = {models[name]: {"models": aliases} for name, aliases in tiers.items()}
    settings = make_test_settings(tmp, redis_url, database_url, tiers=config, **overrides)
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        api = harness(client=client, settings=settings, tier=tier, other_tier=other_tier)
        try:
            yield api
        finally:
            delete_tier_queues(api.redis, [tier, other_tier], settings.key_prefix)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Every error answers ``{"error": {"code", "message", ...}}`` with a non-empty message."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error
