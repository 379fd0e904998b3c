"""The jobs API in process, on SQLite and on PostgreSQL; no worker runs, so jobs stay queued."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from sqlalchemy import text
from sqlmodel import Session, select
from tests_support import database_url_for, new_tenant_key, queued_job_ids

from schemas.tables import IdempotencyRecord, Job, utcnow
from workers import store
from workers.keys import RedisKeys

MESSAGES = [{"role": "user", "content": "Summarise the attached memo."}]
TIERS = {"tier": ["emu-a", "emu-b"], "other_tier": ["emu-b"]}


class Api(ApiHarness):
    """The jobs API, with helpers to submit jobs and read the queues."""

    def body(self, **fields: Any) -> dict[str, Any]:
        request = {"messages": MESSAGES, **fields.pop("request", {})}
        return {"tier": self.tier, "request": request, **fields}

    def submit(self, headers: dict[str, str], **fields: Any) -> Any:
        return self.client.post("/v1/jobs", json=self.body(**fields), headers=headers)

    def queued_ids(self, tier: str, priority: str = "live") -> list[str]:
        """Job ids on the tier's queue, every priority level."""
        return queued_job_ids(self.redis, f"tier.{tier}.{priority}")


@contextmanager
def jobs_api(tmp: Path, redis_url: str, database_url: str, **overrides: Any) -> Iterator[Api]:
    """The API on two fresh tiers: one on emu-a and emu-b, the other on emu-b."""
    with open_api(Api, tmp, redis_url, database_url, TIERS, **overrides) as api:
        yield api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    """One API per database for the module; every test makes its own tenants."""
    tmp = tmp_path_factory.mktemp("api")
    database_url = database_url_for(request, tmp)
    with jobs_api(tmp, redis_url, database_url) as opened:
        yield opened


@pytest.fixture
def make_api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Callable[..., Api]]:
    """Builds an API with settings overrides, on the parametrised database."""
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(
            jobs_api(tmp_path, redis_url, database_url, **overrides)
        )


@pytest.fixture
def auth(api: Api) -> dict[str, str]:
    return api.tenant()


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


def test_get_with_wait_on_queued_job_returns_after_wait_still_queued(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]

    started = time.monotonic()
    response = api.client.get(f"/v1/jobs/{job_id}", params={"wait": 1}, headers=auth)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert 0.9 <= elapsed < 3


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


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"status": "sleeping"}])
def test_list_rejects_bad_query_with_validation_error(
    api: Api, auth: dict[str, str], params: dict[str, Any]
) -> None:
    assert_error(api.client.get("/v1/jobs", params=params, headers=auth), 422, "validation_error")


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


# Tenants, keys and scopes


def test_tenant_cannot_see_or_cancel_another_tenants_job(api: Api, auth: dict[str, str]) -> None:
    job_id = api.submit(auth).json()["id"]
    other = api.tenant()
    own = api.submit(other).json()["id"]

    assert_error(api.client.get(f"/v1/jobs/{job_id}", headers=other), 404, "not_found")
    assert_error(api.client.post(f"/v1/jobs/{job_id}/cancel", headers=other), 404, "not_found")
    assert_error(api.client.get("/v1/jobs", params={"cursor": job_id}, headers=other), 404, "not_found")
    listed = api.client.get("/v1/jobs", headers=other).json()["data"]
    assert [job["id"] for job in listed] == [own]
    assert api.client.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"] == "queued"


def test_read_only_key_cannot_submit(api: Api) -> None:
    reader = api.tenant({"read"})

    error = assert_error(api.submit(reader), 403, "insufficient_scope")

    assert error["scope"] == "submit"
    assert api.client.get("/v1/jobs", headers=reader).status_code == 200


def test_submit_only_key_cannot_read(api: Api) -> None:
    submitter = api.tenant({"submit"})
    job_id = api.submit(submitter).json()["id"]

    assert_error(api.client.get(f"/v1/jobs/{job_id}", headers=submitter), 403, "insufficient_scope")
    assert_error(api.client.get("/v1/jobs", headers=submitter), 403, "insufficient_scope")


def test_admin_key_may_submit_and_read(api: Api) -> None:
    admin = api.tenant({"admin"})
    job_id = api.submit(admin).json()["id"]

    assert api.client.get(f"/v1/jobs/{job_id}", headers=admin).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sy_not-a-real-key"},
        {"Authorization": "Bearer not-even-a-switchyard-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown", "foreign", "basic", "empty"],
)
def test_missing_or_unknown_key_answers_401(api: Api, headers: dict[str, str]) -> None:
    assert_error(api.client.post("/v1/jobs", json=api.body(), headers=headers), 401, "invalid_api_key")
    assert_error(api.client.get("/v1/jobs", headers=headers), 401, "invalid_api_key")


def test_keys_are_stored_only_as_sha256(api: Api) -> None:
    tenant_id, secret = new_tenant_key(api.engine)

    with api.engine.connect() as connection:
        rows = (
            connection.execute(text("SELECT * FROM api_keys WHERE tenant_id = :t"), {"t": tenant_id})
            .mappings()
            .all()
        )

    assert len(rows) == 1
    row = rows[0]
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in row.items():
        assert secret not in str(value), column
    assert api.client.get("/v1/jobs", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


# Idempotency-Key


def test_same_idempotency_key_and_body_replays_the_job(api: Api, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": "order-42"}

    first = api.submit(headers)
    second = api.submit(headers)

    assert first.status_code == second.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert api.queued_ids(api.tier).count(first.json()["id"]) == 1  # the replay publishes nothing


def test_same_idempotency_key_with_other_body_answers_422(api: Api, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": "order-43"}
    first = api.submit(headers)

    reused = api.submit(headers, metadata={"changed": True})

    error = assert_error(reused, 422, "idempotency_key_reused")
    assert error["job_id"] == first.json()["id"]


def test_quoted_idempotency_key_equals_bare_key(api: Api, auth: dict[str, str]) -> None:
    quoted = api.submit({**auth, "Idempotency-Key": '"abc"'})
    bare = api.submit({**auth, "Idempotency-Key": "abc"})

    assert bare.headers.get("Idempotent-Replayed") == "true"
    assert bare.json()["id"] == quoted.json()["id"]


def test_idempotency_keys_are_per_tenant(api: Api, auth: dict[str, str]) -> None:
    other = api.tenant()

    mine = api.submit({**auth, "Idempotency-Key": "shared-key"})
    theirs = api.submit({**other, "Idempotency-Key": "shared-key"})

    assert theirs.status_code == 202
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert api.client.get(f"/v1/jobs/{theirs.json()['id']}", headers=other).status_code == 200


def test_idempotency_record_lasts_at_least_24_hours(api: Api, auth: dict[str, str]) -> None:
    before = utcnow()
    job_id = api.submit({**auth, "Idempotency-Key": "long-lived"}).json()["id"]

    with Session(api.engine) as session:
        record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.job_id == job_id)).one()

    assert record.key == "long-lived"
    assert record.expires_at >= before + timedelta(hours=24)


@pytest.mark.parametrize(
    "key", ["", '""', "x" * 256, "caf\u00e9"], ids=["empty", "empty-quoted", "too-long", "non-ascii"]
)
def test_malformed_idempotency_key_answers_400(api: Api, auth: dict[str, str], key: str) -> None:
    headers: Any = {**auth, "Content-Type": "application/json", "Idempotency-Key": key.encode("utf-8")}

    response = api.client.post("/v1/jobs", content=json.dumps(api.body()).encode(), headers=headers)

    assert_error(response, 400, "invalid_idempotency_key")


# Input limits


def test_body_over_max_body_bytes_answers_413(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=2_000)
    auth = api.tenant()
    small = api.body(request={"messages": [{"role": "user", "content": "x" * 1_000}]})
    large = api.body(request={"messages": [{"role": "user", "content": "x" * 3_000}]})

    assert api.client.post("/v1/jobs", json=small, headers=auth).status_code == 202
    error = assert_error(api.client.post("/v1/jobs", json=large, headers=auth), 413, "payload_too_large")
    assert error["max_bytes"] == 2_000


def test_streamed_body_over_max_body_bytes_answers_413(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=2_000)
    auth = api.tenant()
    payload = json.dumps(api.body(request={"messages": [{"role": "user", "content": "x" * 3_000}]})).encode()
    chunks = [payload[i : i + 500] for i in range(0, len(payload), 500)]

    response = api.client.post(
        "/v1/jobs", content=iter(chunks), headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 413, "payload_too_large")


def test_too_many_messages_answers_400(api: Api, auth: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "hi"}] * (api.settings.max_messages + 1)

    error = assert_error(api.submit(auth, request={"messages": messages}), 400, "too_many_messages")

    assert error["max_messages"] == api.settings.max_messages


def test_content_too_long_answers_400(api: Api, auth: dict[str, str]) -> None:
    limit = api.settings.max_content_chars
    at_limit = [{"role": "system", "content": "s" * 10}, {"role": "user", "content": "u" * (limit - 10)}]
    over = [{"role": "system", "content": "s" * 10}, {"role": "user", "content": "u" * (limit - 9)}]

    assert api.submit(auth, request={"messages": at_limit}).status_code == 202
    assert_error(api.submit(auth, request={"messages": over}), 400, "content_too_long")


@pytest.mark.parametrize(
    "field_value",
    [("max_tokens", 0), ("max_tokens", -5), ("max_tokens", 32_769), ("max_completion_tokens", 32_769)],
)
def test_max_tokens_out_of_range_answers_400(
    api: Api, auth: dict[str, str], field_value: tuple[str, int]
) -> None:
    field, value = field_value
    assert api.settings.max_tokens_limit == 32_768

    assert_error(api.submit(auth, request={field: value}), 400, "max_tokens_out_of_range")


def test_max_tokens_at_limit_is_accepted(api: Api, auth: dict[str, str]) -> None:
    assert api.submit(auth, request={"max_tokens": api.settings.max_tokens_limit}).status_code == 202
    assert api.submit(auth, request={"max_tokens": 1}).status_code == 202


def test_unknown_tier_answers_400_listing_known_tiers(api: Api, auth: dict[str, str]) -> None:
    error = assert_error(api.submit(auth, tier="no-such-tier"), 400, "unknown_tier")

    for tier in api.settings.tiers:
        assert tier in error["message"]
    assert error["known_tiers"] == sorted(api.settings.tiers)


@pytest.mark.parametrize("model", ["gpt-unknown", "emu-slow"], ids=["unconfigured", "other-tier"])
def test_unknown_model_answers_400(api: Api, auth: dict[str, str], model: str) -> None:
    error = assert_error(api.submit(auth, request={"model": model}), 400, "unknown_model")

    assert error["known_models"] == ["emu-a", "emu-b"]


def test_model_of_the_tier_is_accepted(api: Api, auth: dict[str, str]) -> None:
    assert api.submit(auth, request={"model": "emu-b"}).status_code == 202


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "https:///no-host",
        "https://exa mple.com/hook",
        "https://example.com/hook with space",
        "https://user:secret@example.com/hook",
        "https://user@example.com/hook",
        "example.com/hook",
        "https://example.com:0/hook",
        "https://example.com:99999/hook",
        "https://" + "a" * 2050 + ".com/",
    ],
)
def test_malformed_callback_url_answers_400(api: Api, auth: dict[str, str], url: str) -> None:
    assert_error(api.submit(auth, callback_url=url), 400, "invalid_callback_url")


def test_wellformed_callback_url_is_accepted(api: Api, auth: dict[str, str]) -> None:
    response = api.submit(auth, callback_url="https://hooks.example.com/switchyard?x=1")

    assert response.status_code == 202
    assert response.json()["callback_url"] == "https://hooks.example.com/switchyard?x=1"


def test_malformed_json_answers_422(api: Api, auth: dict[str, str]) -> None:
    response = api.client.post(
        "/v1/jobs",
        content=b'{"tier": "small", "request": ',
        headers={**auth, "Content-Type": "application/json"},
    )

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [
        {"colour": "red"},
        {"request": {"messages": MESSAGES, "not_an_openai_field": 1}},
        {"request": {"messages": []}},
        {"request": {"messages": MESSAGES, "stream": "yes"}},
        {"priority": "urgent"},
    ],
    ids=["unknown-field", "unknown-request-field", "no-messages", "stream-not-bool", "bad-priority"],
)
def test_invalid_body_answers_422(api: Api, auth: dict[str, str], body: dict[str, Any]) -> None:
    full = {"tier": api.tier, "request": {"messages": MESSAGES}, **body}

    error = assert_error(api.client.post("/v1/jobs", json=full, headers=auth), 422, "validation_error")

    assert error["errors"]


def test_nul_characters_are_refused(api: Api, auth: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "before\u0000after"}]

    assert_error(api.submit(auth, request={"messages": messages}), 400, "invalid_request")
    assert_error(api.submit(auth, callback_url="https://example.com/\u0000"), 400, "invalid_request")


@pytest.mark.parametrize(
    "fragment",
    [
        b'"metadata": {"x": Infinity}',
        b'"metadata": {"x": NaN}',
        b'"metadata": {"x": 1e400}',
        b'"request": {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": -Infinity}}',
        b'"request": {"messages": [{"role": "user", "content": "a\\ud800b"}]}',
        b'"metadata": {"k\\udfff": 1}',
        b'"callback_url": "https://example.com/\\ud800"',
    ],
    ids=["infinity", "nan", "overflow", "logit-bias", "surrogate-content", "surrogate-key", "surrogate-url"],
)
def test_body_postgresql_cannot_store_answers_400(api: Api, auth: dict[str, str], fragment: bytes) -> None:
    # Python's JSON parser accepts these; JSONB and UTF-8 do not, so they must not reach the database.
    body = (
        b'{"tier": "'
        + api.tier.encode()
        + b'", "request": {"messages": [{"role": "user", "content": "hi"}]}, '
    )
    response = api.client.post(
        "/v1/jobs", content=body + fragment + b"}", headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("path", "params"),
    [("/v1/jobs/job_%00", {}), ("/v1/jobs", {"cursor": "job_\x00"}), ("/v1/jobs", {"tier": "a\x00b"})],
    ids=["job-id", "cursor", "tier"],
)
def test_nul_in_path_or_query_answers_422(
    api: Api, auth: dict[str, str], path: str, params: dict[str, str]
) -> None:
    assert_error(api.client.get(path, params=params, headers=auth), 422, "validation_error")


# Health and docs


def test_healthz_answers_200(api: Api) -> None:
    response = api.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_with_checks(api: Api) -> None:
    response = api.client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": True, "redis": True}}


def test_docs_and_openapi_are_served(api: Api) -> None:
    docs = api.client.get("/docs")
    schema = api.client.get("/openapi.json")

    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert schema.status_code == 200
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/cancel"} <= set(schema.json()["paths"])


def test_unknown_route_answers_404_with_error_body(api: Api) -> None:
    assert_error(api.client.get("/v1/nothing-here"), 404, "not_found")
