"""``completion_window`` on ``POST /v1/jobs``: stored for the provider batch lane, checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import assert_error
from jobs_api_support import Api, jobs_api
from sqlmodel import Session

from schemas.tables import Job


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Api]:
    with jobs_api(tmp_path, redis_url, database_url) as opened:
        yield opened


def test_a_24h_batch_job_is_stored_with_its_window_and_queued_on_the_batch_lane(api: Api) -> None:
    auth = api.tenant()
    response = api.submit(auth, priority="batch", completion_window="24h")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    with Session(api.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.completion_window == "24h" and job.priority == "batch"
    assert api.queued_ids(api.tier, "batch") == [job_id]
    plain = api.submit(auth).json()["id"]
    with Session(api.engine) as session:
        row = session.get(Job, plain)
        assert row is not None and row.completion_window is None


@pytest.mark.parametrize("window", ["1h", "", 24, "48h"])
def test_any_other_window_is_refused(api: Api, window: object) -> None:
    assert_error(
        api.submit(api.tenant(), priority="batch", completion_window=window), 422, "validation_error"
    )
