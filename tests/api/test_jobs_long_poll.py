"""``GET /v1/jobs/{id}?wait=``: the long-poll, woken by the worker's event, with reads saved
where the API already knows the job; on SQLite and PostgreSQL, no worker runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import jobs_api_support
import pytest
from api_harness import assert_error
from jobs_api_support import Api
from sqlmodel import Session

from schemas.tables import Job
from workers import store
from workers.keys import RedisKeys

# The shared fixtures, by name.
api, auth, make_api = jobs_api_support.api, jobs_api_support.auth, jobs_api_support.make_api


def test_get_with_wait_on_queued_job_returns_after_wait_still_queued(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]

    started = time.monotonic()
    response = api.client.get(f"/v1/jobs/{job_id}", params={"wait": 1}, headers=auth)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 0.9 <= elapsed < 3


def test_a_wait_above_max_wait_s_is_capped_not_refused(make_api: Callable[..., Api]) -> None:
    api = make_api(max_wait_s=1)
    auth = api.tenant()
    job_id = api.submit(auth).json()["id"]

    started = time.monotonic()
    response = api.client.get(f"/v1/jobs/{job_id}", params={"wait": 61}, headers=auth)
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert 0.9 <= elapsed < 3  # waited max_wait_s, not 61 s


def test_get_with_wait_on_final_job_returns_at_once(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]
    assert api.client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200

    started = time.monotonic()
    response = api.client.get(f"/v1/jobs/{job_id}", params={"wait": 30}, headers=auth)

    assert time.monotonic() - started < 1
    assert response.json()["status"] == "canceled"


def test_get_with_wait_wakes_when_job_ends(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]
    answers: list[Any] = []
    poller = threading.Thread(
        target=lambda: answers.append(api.client.get(f"/v1/jobs/{job_id}", params={"wait": 20}, headers=auth))
    )

    started = time.monotonic()
    poller.start()
    time.sleep(0.3)
    assert api.client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
    poller.join(timeout=10)

    assert time.monotonic() - started < 5
    assert answers and answers[0].json()["status"] == "canceled"


def _poll_in_background(
    api: Api, job_id: str, auth: dict[str, str], wait: float
) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []
    poller = threading.Thread(
        target=lambda: answers.append(
            api.client.get(f"/v1/jobs/{job_id}", params={"wait": wait}, headers=auth)
        )
    )
    poller.start()
    time.sleep(0.3)
    return poller, answers


def test_waiting_poll_answers_with_the_finished_job_the_worker_event_carries(
    api: Api, auth: dict[str, str]
) -> None:
    queued = api.submit(auth).json()
    poller, answers = _poll_in_background(api, queued["id"], auth, wait=20)
    finished = {**queued, "status": "succeeded", "model": "from-the-event"}
    event = {
        "job_id": queued["id"],
        "tenant_id": _tenant_of(api, queued["id"]),
        "status": "succeeded",
        "job": finished,
    }

    api.redis.publish(RedisKeys(api.settings.key_prefix).job_events, json.dumps(event))
    poller.join(timeout=10)

    assert answers and answers[0].json()["model"] == "from-the-event"  # not re-read from the row


def test_waiting_poll_ignores_an_event_of_another_tenant(api: Api, auth: dict[str, str]) -> None:
    queued = api.submit(auth).json()
    poller, answers = _poll_in_background(api, queued["id"], auth, wait=1.5)
    forged = {
        "job_id": queued["id"],
        "tenant_id": "ten_other",
        "status": "succeeded",
        "job": {"model": "forged"},
    }

    api.redis.publish(RedisKeys(api.settings.key_prefix).job_events, json.dumps(forged))
    poller.join(timeout=10)

    assert answers and answers[0].json()["status"] == "queued"  # read from the row instead


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job ids the API reads from the database from now on."""
    reads: list[str] = []
    read_job = store.read_job

    def counting(engine: Any, tenant_id: str, job_id: str) -> Any:
        reads.append(job_id)
        return read_job(engine, tenant_id, job_id)

    monkeypatch.setattr(store, "read_job", counting)
    return reads


def _publish_final(api: Api, queued: dict[str, Any], **changes: Any) -> None:
    finished = {**queued, "status": "succeeded", **changes}
    event = {"job_id": queued["id"], "tenant_id": _tenant_of(api, queued["id"]), "status": "succeeded"}
    api.redis.publish(RedisKeys(api.settings.key_prefix).job_events, json.dumps({**event, "job": finished}))


def test_poll_of_a_job_this_process_accepted_waits_without_a_read(
    api: Api, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = api.submit(auth).json()
    reads = _count_reads(monkeypatch)
    poller, answers = _poll_in_background(api, queued["id"], auth, wait=20)

    _publish_final(api, queued, model="from-the-event")
    poller.join(timeout=10)

    assert answers and answers[0].json()["model"] == "from-the-event"
    assert reads == []


def test_poll_after_the_job_ended_answers_from_its_event_without_a_read(
    api: Api, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = api.submit(auth).json()
    _publish_final(api, queued, model="remembered")
    deadline = time.monotonic() + 5
    while api.services.waiter.recent(queued["id"], _tenant_of(api, queued["id"])).final_body is None:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the waiter never saw the event"
        time.sleep(0.02)
    reads = _count_reads(monkeypatch)

    started = time.monotonic()
    response = api.client.get(f"/v1/jobs/{queued['id']}", params={"wait": 20}, headers=auth)

    assert time.monotonic() - started < 1
    assert response.json()["model"] == "remembered"
    assert reads == []


def test_another_tenants_poll_of_a_just_accepted_job_answers_404(api: Api, auth: dict[str, str]) -> None:
    queued = api.submit(auth).json()

    response = api.client.get(f"/v1/jobs/{queued['id']}", params={"wait": 1}, headers=api.tenant())

    assert_error(response, 404, "not_found")


def _tenant_of(api: Api, job_id: str) -> str:
    with Session(api.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.tenant_id
