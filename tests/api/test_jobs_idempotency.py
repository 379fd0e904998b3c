"""``Idempotency-Key`` on ``POST /v1/jobs``: replays, conflicts, quoting, per tenant, lifetime."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jobs_api_support
import pytest
from api_harness import assert_error
from jobs_api_support import Api
from sqlmodel import Session, select

from schemas.tables import IdempotencyRecord, utcnow

api, auth = jobs_api_support.api, jobs_api_support.auth  # the shared fixtures, by name


def test_same_idempotency_key_and_body_replays_the_job(api: Api, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": "order-42"}

    first = api.submit(headers)
    second = api.submit(headers)

    assert first.status_code == second.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert api.queued_ids(api.tier).count(first.json()["id"]) == 1  # the replay publishes nothing


def test_replay_of_a_key_whose_job_ended_answers_200(api: Api, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": "order-44"}
    first = api.submit(headers)
    assert api.client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=auth).status_code == 200

    replay = api.submit(headers)

    # What the first request would answer now: 200 with the job as it ended, not 202.
    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"] and replay.json()["status"] == "canceled"


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
