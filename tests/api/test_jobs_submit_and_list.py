"""Submitting, reading, listing and cancelling jobs at the API, on SQLite and PostgreSQL; no
worker runs, so jobs stay queued."""

from __future__ import annotations

from typing import Any

import jobs_api_support
import pytest
from api_harness import assert_error
from jobs_api_support import MESSAGES, Api
from tests_support import new_tenant_key

from api.keys import create_key
from workers.db import session_scope

api, auth = jobs_api_support.api, jobs_api_support.auth  # the shared fixtures, by name


# Submit and read


def test_submit_answers_202_with_queued_job_and_publishes_it(api: Api, auth: dict[str, str]) -> None:
    request = {"messages": MESSAGES, "temperature": 0.3, "max_tokens": 50}
    body = {"tier": api.tier, "request": request, "metadata": {"doc": "memo-1"}}

    response = api.client.post("/v1/jobs", json=body, headers=auth)

    assert response.status_code == 202, response.text
    job = response.json()
    assert job["id"].startswith("job_")
    assert (job["object"], job["status"], job["tier"], job["priority"]) == ("job", "queued", api.tier, "live")
    assert job["request"] == request
    assert job["metadata"] == {"doc": "memo-1"}
    assert job["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert (job["cost_usd"], job["attempts"], job["result"], job["error"]) == (0, 0, None, None)
    assert job["created_at"].endswith(("Z", "+00:00"))
    assert api.queued_ids(api.tier).count(job["id"]) == 1


def test_batch_priority_job_is_published_to_batch_queue(api: Api, auth: dict[str, str]) -> None:
    job = api.submit(auth, priority="batch").json()

    assert job["id"] in api.queued_ids(api.tier, "batch")
    assert job["id"] not in api.queued_ids(api.tier, "live")


def test_get_returns_the_submitted_job(api: Api, auth: dict[str, str]) -> None:
    created = api.submit(auth).json()

    response = api.client.get(f"/v1/jobs/{created['id']}", headers=auth)

    assert response.status_code == 200
    assert response.json() == created


def test_get_unknown_job_answers_404(api: Api, auth: dict[str, str]) -> None:
    assert_error(api.client.get("/v1/jobs/job_nope", headers=auth), 404, "not_found")


# List


def test_list_pages_newest_first_with_cursor(api: Api, auth: dict[str, str]) -> None:
    created = [api.submit(auth).json()["id"] for _ in range(3)]

    first = api.client.get("/v1/jobs", params={"limit": 2}, headers=auth).json()
    second = api.client.get(
        "/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()

    assert first["object"] == "list"
    assert [job["id"] for job in first["data"]] == created[:0:-1]
    assert (first["has_more"], first["next_cursor"]) == (True, created[1])
    assert [job["id"] for job in second["data"]] == created[:1]
    assert (second["has_more"], second["next_cursor"]) == (False, None)


def test_list_filters_by_status_and_tier(api: Api, auth: dict[str, str]) -> None:
    queued = api.submit(auth).json()["id"]
    canceled = api.submit(auth).json()["id"]
    api.client.post(f"/v1/jobs/{canceled}/cancel", headers=auth)
    other = api.client.post(
        "/v1/jobs", json={"tier": api.other_tier, "request": {"messages": MESSAGES}}, headers=auth
    ).json()["id"]

    def ids(**params: Any) -> set[str]:
        response = api.client.get("/v1/jobs", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return {job["id"] for job in response.json()["data"]}

    assert ids() == {queued, canceled, other}
    assert ids(status="canceled") == {canceled}
    assert ids(status="queued") == {queued, other}
    assert ids(tier=api.other_tier) == {other}
    assert ids(tier=api.tier, status="queued") == {queued}


def test_list_filters_by_the_key_that_submitted(api: Api) -> None:
    tenant_id, first_secret = new_tenant_key(api.engine)
    with session_scope(api.engine) as session:
        second_secret = create_key(session, tenant_id, {"submit", "read"}, "second")
    first, second = ({"Authorization": f"Bearer {secret}"} for secret in (first_secret, second_secret))
    by_first, by_second = api.submit(first).json(), api.submit(second).json()
    assert by_first["api_key_id"] != by_second["api_key_id"]

    listed = api.client.get("/v1/jobs", params={"api_key_id": by_second["api_key_id"]}, headers=first)

    assert [job["id"] for job in listed.json()["data"]] == [by_second["id"]]  # either key sees the tenant's


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"status": "sleeping"}])
def test_list_rejects_bad_query_with_validation_error(
    api: Api, auth: dict[str, str], params: dict[str, Any]
) -> None:
    assert_error(api.client.get("/v1/jobs", params=params, headers=auth), 422, "validation_error")


@pytest.mark.parametrize(
    "cursor",
    ["job_0000000000000000000000", "garbage!", "job_\x00", "", "x" * 300],
    ids=["unknown-id", "not-an-id", "nul", "empty", "too-long"],
)
def test_a_bad_cursor_answers_400_invalid_cursor(api: Api, auth: dict[str, str], cursor: str) -> None:
    api.submit(auth)

    error = assert_error(
        api.client.get("/v1/jobs", params={"cursor": cursor}, headers=auth), 400, "invalid_cursor"
    )

    assert error["param"] == "cursor" and "without it" in error["message"]  # says what to do


# Cancel


def test_cancel_queued_job_then_cancel_again_conflicts(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]

    first = api.client.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    second = api.client.post(f"/v1/jobs/{job_id}/cancel", headers=auth)

    assert first.status_code == 200
    assert first.json()["status"] == "canceled"
    assert first.json()["finished_at"] is not None
    assert_error(second, 409, "job_not_cancelable")
    assert api.client.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"] == "canceled"
