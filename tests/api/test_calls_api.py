"""``GET /v1/calls``: provider calls and cache answers newest first, each filter, paging across
both sources (ties included), tenant isolation. In process, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from tests_support import new_tenant_key

from api.keys import create_platform_key
from schemas.tables import Usage
from workers import store

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[ApiHarness]:
    with open_api(
        ApiHarness, tmp_path, redis_url, database_url, {"tier": ["emu-a"], "other_tier": ["emu-b"]}
    ) as api:
        yield api


@dataclass(frozen=True)
class Seeded:
    """A tenant's key and the ids of what was seeded, by name."""

    tenant_id: str
    headers: dict[str, str]
    jobs: dict[str, str]
    calls: dict[str, str]


def add_job(engine: Engine, tenant_id: str, tier: str, at: datetime, **fields: Any) -> str:
    with store.session_scope(engine) as session:
        job = store.insert_job(
            session,
            tenant_id=tenant_id,
            tier=tier,
            request={"messages": []},
            job_metadata={},
            created_at=at,
            **fields,
        )
    return job.id


def add_call(engine: Engine, job_id: str, tenant_id: str, tier: str, at: datetime, **fields: Any) -> str:
    values = {
        "model": "emu-a",
        "provider": "emulator",
        "attempt": 1,
        "outcome": "ok",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.01,
        "latency_ms": 120.0,
        **fields,
    }
    store.record_usage(engine, Usage(job_id=job_id, tenant_id=tenant_id, tier=tier, created_at=at, **values))
    with Session(engine) as session:
        query = select(Usage).where(Usage.job_id == job_id, Usage.attempt == values["attempt"])
        return f"call_{session.exec(query).one().id}"


def hit(kind: str, saved: float) -> dict[str, Any]:
    return {"mode": kind, "ttl_s": 60, "key": "k", "hit": kind, "source_job": "job_src", "saved_usd": saved}


def seed(api: ApiHarness) -> Seeded:
    """Job A: a 429 then a success; B: an exact hit; C: a semantic hit; D: a call of emu-b on
    the other tier; E (a hit) and F (a call) at one instant; a job with no call at all."""
    tenant_id, secret = new_tenant_key(api.engine, {"read"})
    engine, tier = api.engine, api.tier
    done = {"status": "succeeded", "finished_at": T0 + timedelta(minutes=10)}
    jobs = {
        "A": add_job(engine, tenant_id, tier, T0, **done),
        "B": add_job(engine, tenant_id, tier, T0 + timedelta(seconds=2), cache=hit("exact", 0.02), **done),
        "C": add_job(engine, tenant_id, tier, T0 + timedelta(seconds=3), cache=hit("semantic", 0.03), **done),
        "D": add_job(engine, tenant_id, api.other_tier, T0 + timedelta(seconds=4), **done),
        "E": add_job(engine, tenant_id, tier, T0 + timedelta(seconds=5), cache=hit("exact", 0.01), **done),
        "F": add_job(engine, tenant_id, tier, T0 + timedelta(seconds=5), **done),
        "none": add_job(
            engine, tenant_id, tier, T0 + timedelta(seconds=6), cache={"mode": "exact", "hit": None}
        ),
    }
    calls = {
        "A1": add_call(engine, jobs["A"], tenant_id, tier, T0, outcome="rate_limited", cost_usd=0.0),
        "A2": add_call(engine, jobs["A"], tenant_id, tier, T0 + timedelta(seconds=1), attempt=2),
        "D": add_call(engine, jobs["D"], tenant_id, api.other_tier, T0 + timedelta(seconds=4), model="emu-b"),
        "F": add_call(engine, jobs["F"], tenant_id, tier, T0 + timedelta(seconds=5)),
    }
    calls |= {"B": f"hit_{jobs['B']}", "C": f"hit_{jobs['C']}", "E": f"hit_{jobs['E']}"}
    return Seeded(tenant_id, {"Authorization": f"Bearer {secret}"}, jobs, calls)


NEWEST_FIRST = ["F", "E", "D", "C", "B", "A2", "A1"]  # at one instant, a call before a hit


def page(api: ApiHarness, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = api.client.get("/v1/calls", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def names(seeded: Seeded, body: dict[str, Any]) -> list[str]:
    by_id = {call_id: name for name, call_id in seeded.calls.items()}
    return [by_id[row["id"]] for row in body["data"]]


def test_calls_and_cache_answers_come_newest_first_with_their_fields(api: ApiHarness) -> None:
    seeded = seed(api)

    body = page(api, seeded.headers)

    assert names(seeded, body) == NEWEST_FIRST and body["has_more"] is False and body["next_cursor"] is None
    rows = {row["id"]: row for row in body["data"]}
    first_try = rows[seeded.calls["A1"]]
    assert {
        key: first_try[key] for key in ("job_id", "attempt", "tier", "model", "outcome", "error_code")
    } == {
        "job_id": seeded.jobs["A"],
        "attempt": 1,
        "tier": api.tier,
        "model": "emu-a",
        "outcome": "error",
        "error_code": "rate_limited",
    }
    second = rows[seeded.calls["A2"]]
    assert (second["outcome"], second["error_code"], second["cost_usd"], second["cache"]) == (
        "ok",
        None,
        0.01,
        None,
    )
    assert (second["prompt_tokens"], second["completion_tokens"], second["latency_ms"]) == (10, 5, 120.0)
    semantic = rows[seeded.calls["C"]]
    assert (semantic["cache"], semantic["saved_usd"], semantic["cost_usd"], semantic["outcome"]) == (
        "semantic",
        0.03,
        0.0,
        "ok",
    )
    assert semantic["job_id"] == seeded.jobs["C"] and semantic["created_at"] == "2026-11-03T09:00:03Z"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "error"}, ["A1"]),
        ({"status": "rate_limited"}, ["A1"]),
        ({"status": "provider_timeout"}, []),
        ({"status": "ok"}, ["F", "E", "D", "C", "B", "A2"]),
        ({"cache": "exact"}, ["E", "B"]),
        ({"cache": "semantic"}, ["C"]),
        ({"cache": "none"}, ["F", "D", "A2", "A1"]),
        ({"model": "emu-b"}, ["D"]),
        ({"provider": "elsewhere"}, []),
        ({"from": "2026-11-03T09:00:01Z", "to": "2026-11-03T09:00:04Z"}, ["C", "B", "A2"]),
        ({"from": "2026-11-03T09:00:05"}, ["F", "E"]),  # no zone: UTC
        ({"cache": "exact", "status": "error"}, []),
    ],
)
def test_each_filter_narrows_the_log(api: ApiHarness, params: dict[str, str], expected: list[str]) -> None:
    seeded = seed(api)

    assert names(seeded, page(api, seeded.headers, **params)) == expected


def test_filters_by_tier_and_job(api: ApiHarness) -> None:
    seeded = seed(api)

    assert names(seeded, page(api, seeded.headers, tier=api.other_tier)) == ["D"]
    assert names(seeded, page(api, seeded.headers, job_id=seeded.jobs["A"])) == ["A2", "A1"]
    assert names(seeded, page(api, seeded.headers, job_id=seeded.jobs["B"])) == ["B"]
    assert names(seeded, page(api, seeded.headers, job_id=seeded.jobs["none"])) == []


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_pages_walk_every_call_once_across_both_sources(api: ApiHarness, limit: int) -> None:
    seeded = seed(api)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        body = page(api, seeded.headers, limit=limit, **({"cursor": cursor} if cursor else {}))
        seen += names(seeded, body)
        assert len(body["data"]) <= limit
        cursor = body["next_cursor"]
        assert (cursor is not None) == body["has_more"]
        if cursor is None:
            break
    assert seen == NEWEST_FIRST


def test_a_page_after_a_cache_answer_goes_on_with_older_calls_and_answers(api: ApiHarness) -> None:
    seeded = seed(api)

    body = page(api, seeded.headers, limit=1, cursor=seeded.calls["E"])  # after E: D, then older hits
    assert names(seeded, body) == ["D"] and body["next_cursor"] == seeded.calls["D"]
    assert names(seeded, page(api, seeded.headers, limit=2, cursor=seeded.calls["D"])) == ["C", "B"]


def test_bad_input_is_refused_with_a_code(api: ApiHarness) -> None:
    seeded = seed(api)
    get = api.client.get

    later_first = {"from": "2026-11-04T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
    assert_error(get("/v1/calls", params=later_first, headers=seeded.headers), 400, "invalid_request")
    for cursor in ("call_999999999", "hit_job_nope", "nonsense", "call_1\x00", "x" * 100):
        response = get("/v1/calls", params={"cursor": cursor}, headers=seeded.headers)
        assert_error(response, 400, "invalid_cursor")
    assert_error(get("/v1/calls", params={"cache": "maybe"}, headers=seeded.headers), 422, "validation_error")
    assert_error(get("/v1/calls", params={"limit": 201}, headers=seeded.headers), 422, "validation_error")
    assert_error(
        get("/v1/calls", params={"status": "Bad Code"}, headers=seeded.headers), 422, "validation_error"
    )
    assert_error(get("/v1/calls"), 401, "invalid_api_key")


def test_a_tenant_sees_only_its_own_calls(api: ApiHarness) -> None:
    seeded = seed(api)
    other = api.tenant({"read"})

    assert page(api, other)["data"] == []
    assert names(seeded, page(api, seeded.headers)) == NEWEST_FIRST
    for cursor in (seeded.calls["A2"], seeded.calls["B"]):  # another tenant's rows are no cursor
        assert_error(
            api.client.get("/v1/calls", params={"cursor": cursor}, headers=other), 400, "invalid_cursor"
        )
    refused = api.client.get("/v1/calls", params={"tenant_id": seeded.tenant_id}, headers=other)
    assert_error(refused, 403, "insufficient_scope")
    assert_error(api.client.get("/v1/calls", headers=api.tenant({"submit"})), 403, "insufficient_scope")


def test_a_platform_admin_reads_any_tenants_calls(api: ApiHarness) -> None:
    seeded = seed(api)
    with Session(api.engine) as session:
        secret = create_platform_key(session)
        session.commit()
    platform = {"Authorization": f"Bearer {secret}"}

    assert names(seeded, page(api, platform, tenant_id=seeded.tenant_id)) == NEWEST_FIRST
    assert page(api, platform)["data"] == []  # its own tenant's, by default
    missing = api.client.get("/v1/calls", params={"tenant_id": f"ten_{uuid.uuid4().hex}"}, headers=platform)
    assert_error(missing, 404, "not_found")
