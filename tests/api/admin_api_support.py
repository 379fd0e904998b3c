"""The admin API in process, shared by the tenants, keys and audit test modules: one API per
database (SQLite and PostgreSQL) with two tiers of its own and no worker, and helpers to make
platform admin keys, tenant admins and read the audit log straight from the table.

The fixture ``api`` is bound by name in each module that uses it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api_harness import ApiHarness, open_api
from sqlmodel import Session, col, select
from tests_support import database_url_for

from api import tenancy
from schemas.admin import KeyCreate, TenantCreate
from schemas.spend_tables import AuditEntry
from workers.audit import CLI
from workers.db import session_scope

MESSAGES = [{"role": "user", "content": "Classify this ticket."}]
TIERS = {"tier": ["emu-a"], "other_tier": ["emu-b"]}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class Api(ApiHarness):
    """The admin API with helpers for its principals."""

    def platform(self) -> dict[str, str]:
        """Headers of a new platform admin key."""
        with session_scope(self.engine) as session:
            _, secret = tenancy.add_platform_key(session, CLI, "test platform admin")
        return bearer(secret)

    def tenant_admin(self, scopes: list[str] | None = None) -> tuple[str, dict[str, str]]:
        """A new tenant and the headers of a key of it (admin, submit and read by default)."""
        with session_scope(self.engine) as session:
            tenant = tenancy.add_tenant(session, CLI, TenantCreate(name=f"t-{uuid.uuid4().hex[:10]}"))
            _, secret = tenancy.add_key(
                session, CLI, self.settings, tenant.id, _key_body(scopes or ["admin", "submit", "read"])
            )
        return tenant.id, bearer(secret)

    def submit(self, headers: dict[str, str], tier: str | None = None) -> Any:
        body = {"tier": tier or self.tier, "cache": "off", "request": {"messages": MESSAGES}}
        return self.client.post("/v1/jobs", json=body, headers=headers)

    def audit_rows(self, **where: Any) -> list[AuditEntry]:
        """Audit entries matching ``where`` (column=value), oldest first."""
        query = select(AuditEntry)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        with Session(self.engine) as session:
            return list(session.exec(query.order_by(col(AuditEntry.id))).all())


def _key_body(scopes: list[str]) -> KeyCreate:
    return KeyCreate.model_validate({"scopes": scopes})


def status_within(call: Callable[[], Any], status: int, limit_s: float) -> float:
    """Seconds until ``call()`` answers ``status``, polled every 20 ms; fails past ``limit_s``."""
    start = time.monotonic()
    while True:
        answer = call()
        elapsed = time.monotonic() - start
        if answer.status_code == status:
            return elapsed
        assert elapsed < limit_s, f"still {answer.status_code} after {elapsed:.2f} s: {answer.text}"
        time.sleep(0.02)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    """One admin API per database for the module; every test makes its own tenants."""
    tmp = tmp_path_factory.mktemp("admin")
    with open_api(Api, tmp, redis_url, database_url_for(request, tmp), TIERS) as opened:
        yield opened
