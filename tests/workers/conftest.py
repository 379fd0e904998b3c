"""Fixtures the worker tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import col
from tests_support import new_tenant_key

from schemas.tables import Job
from workers.db import session_scope


@pytest.fixture
def tenant(engine: Engine) -> Iterator[str]:
    """A fresh tenant; its jobs are removed afterwards so no sweep elsewhere finds them."""
    tenant_id, _ = new_tenant_key(engine)
    yield tenant_id
    with session_scope(engine) as session:
        session.execute(delete(Job).where(col(Job.tenant_id) == tenant_id))
