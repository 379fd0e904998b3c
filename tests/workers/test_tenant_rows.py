"""One lookup for a tenant's row by id, and the list cursor built on it: another tenant's row
answers as a missing one (404), and as a cursor it is a bad cursor (400)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from tests_support import new_tenant_key

from schemas.errors import InvalidCursor, NotFound
from schemas.tables import Job
from workers import store
from workers.db import session_scope
from workers.paging import cursor_row
from workers.tenant_rows import get_owned


def add_job(engine: Engine, tenant_id: str) -> str:
    with session_scope(engine) as session:
        request = {"messages": [{"role": "user", "content": "Hello"}]}
        job = store.insert_job(session, tenant_id=tenant_id, tier="small", request=request, job_metadata={})
        return job.id


def test_a_tenant_gets_its_own_row_and_another_tenants_is_not_found(engine: Engine) -> None:
    mine, _ = new_tenant_key(engine)
    theirs, _ = new_tenant_key(engine)
    job_id = add_job(engine, mine)
    with Session(engine) as session:
        assert get_owned(session, Job, mine, job_id, "job", "job_id").id == job_id
        for tenant_id, row_id in ((theirs, job_id), (mine, "job_nothing")):
            with pytest.raises(NotFound) as missing:
                get_owned(session, Job, tenant_id, row_id, "job", "job_id")
            assert missing.value.message == f"No job {row_id!r}."
            assert missing.value.details == {"param": "job_id"}


def test_a_cursor_is_one_of_the_callers_rows(engine: Engine) -> None:
    mine, _ = new_tenant_key(engine)
    theirs, _ = new_tenant_key(engine)
    job_id = add_job(engine, mine)
    with Session(engine) as session:
        assert cursor_row(session, Job, mine, None) is None  # the first page
        found = cursor_row(session, Job, mine, job_id)
        assert found is not None and found.id == job_id
        for cursor in (job_id, "job_nothing", "bad cursor", "job_\x00", "", "x" * 65):
            with pytest.raises(InvalidCursor) as refused:
                cursor_row(session, Job, theirs, cursor, "after")
            assert refused.value.status_code == 400 and refused.value.details == {"param": "after"}
