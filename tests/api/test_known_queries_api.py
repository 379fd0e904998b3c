"""Known queries at the API, in process on SQLite and PostgreSQL with real Redis: CRUD, input
checks, scopes, tenant isolation and suggestions from cache misses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from tests_support import delete_tier_queues, make_test_settings, new_tenant_key

from api.main import create_app
from schemas.tables import KnownQuery, utcnow
from workers.cache.exact import request_key
from workers.cache.results import CachedResult
from workers.db import session_scope
from workers.migrate import upgrade

QUESTION = [{"role": "user", "content": "What are your opening hours?"}]
TIER_TTL_S = 3600


class Api:
    def __init__(self, client: TestClient, tiers: list[str]) -> None:
        self.client = client
        self.tier, self.other_tier = tiers

    @property
    def services(self) -> Any:
        return self.client.app.state.services  # type: ignore[attr-defined]

    def tenant(self, scopes: set[str] | None = None) -> tuple[str, dict[str, str]]:
        tenant_id, secret = new_tenant_key(self.services.engine, scopes or {"submit", "read"})
        return tenant_id, {"Authorization": f"Bearer {secret}"}

    def headers(self, scopes: set[str] | None = None) -> dict[str, str]:
        return self.tenant(scopes)[1]

    def register(self, headers: dict[str, str], **fields: Any) -> Any:
        body = {"tier": self.tier, "request": {"messages": QUESTION}, "every_s": 3600, **fields}
        return self.client.post("/v1/known-queries", json=body, headers=headers)

    def error(self, response: Any, status: int = 400) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return dict(response.json()["error"])


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Api]:
    tiers = [f"kq{uuid.uuid4().hex[:8]}" for _ in range(2)]
    settings = make_test_settings(
        tmp_path,
        redis_url,
        database_url,
        tiers={name: {"models": ["emu-a"], "cache_ttl_s": TIER_TTL_S} for name in tiers},
    )
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        yield Api(client, tiers)
        delete_tier_queues(client.app.state.services.redis, tiers, settings.key_prefix)  # type: ignore[attr-defined]


def test_register_show_list_update_and_delete(api: Api) -> None:
    tenant_id, headers = api.tenant()
    before = utcnow()

    created = api.register(headers, request={"messages": QUESTION, "temperature": 0, "user": "u1"})

    assert created.status_code == 201, created.text
    kq = created.json()
    assert kq["id"].startswith("kq_") and kq["object"] == "known_query"
    # Defaults: the config's window and time zone, the tier's TTL; due at once.
    assert (kq["window_start"], kq["window_end"], kq["timezone"]) == ("01:00", "05:00", "UTC")
    assert kq["ttl_s"] == TIER_TTL_S and kq["every_s"] == 3600 and kq["cron"] is None
    assert kq["enabled"] is True and kq["last_run_at"] is None and kq["last_job_id"] is None
    assert before - timedelta(seconds=1) <= _at(kq["next_run_at"]) <= utcnow()
    # Stored as a live job's request is, under the key a live job computes.
    request = {"messages": QUESTION, "temperature": 0.0, "user": "u1"}
    assert kq["request"] == request
    assert kq["cache_key"] == request_key(tenant_id, api.tier, request)

    path = f"/v1/known-queries/{kq['id']}"
    assert api.client.get(path, headers=headers).json() == kq
    listed = api.client.get("/v1/known-queries", headers=headers).json()
    assert [row["id"] for row in listed["data"]] == [kq["id"]] and listed["has_more"] is False

    changed = api.client.patch(
        path,
        json={
            "cron": "30 2 * * *",
            "window_start": "22:00",
            "window_end": "04:00",
            "timezone": "Europe/Paris",
        },
        headers=headers,
    )

    assert changed.status_code == 200, changed.text
    updated = changed.json()
    assert updated["cron"] == "30 2 * * *" and updated["every_s"] is None  # cron replaces every_s
    assert (updated["window_start"], updated["window_end"], updated["timezone"]) == (
        "22:00",
        "04:00",
        "Europe/Paris",
    )
    assert api.client.get(path, headers=headers).json() == updated

    assert api.client.delete(path, headers=headers).status_code == 204
    assert api.error(api.client.get(path, headers=headers), 404)["code"] == "not_found"
    assert api.client.get("/v1/known-queries", headers=headers).json()["data"] == []


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        ({"tier": "nope"}, 400, "unknown_tier", None),
        ({"request": {"messages": QUESTION, "model": "emu-b"}}, 400, "unknown_model", None),
        ({"request": {"messages": QUESTION, "max_tokens": 0}}, 400, "max_tokens_out_of_range", None),
        ({"request": {"messages": [{"role": "user", "content": "a\u0000b"}]}}, 400, "invalid_request", None),
        ({"request": {"messages": []}}, 422, "validation_error", None),
        ({"every_s": None, "cron": "61 * * * *"}, 400, "invalid_schedule", "cron"),
        ({"every_s": None, "cron": "every night"}, 400, "invalid_schedule", "cron"),
        ({"every_s": None, "cron": "0 3 * * * 30"}, 400, "invalid_schedule", "cron"),
        ({"every_s": None, "cron": "0 0 31 2 *"}, 400, "invalid_schedule", "cron"),
        ({"cron": "0 3 * * *"}, 400, "invalid_schedule", "cron"),
        ({"every_s": None}, 400, "invalid_schedule", "every_s"),
        ({"every_s": 10}, 422, "validation_error", None),
        ({"ttl_s": 0}, 422, "validation_error", None),
        ({"window_start": "25:00", "window_end": "04:00"}, 400, "invalid_schedule", "window_start"),
        ({"window_start": "01:00", "window_end": "4am"}, 400, "invalid_schedule", "window_end"),
        ({"window_start": "01:00"}, 400, "invalid_schedule", "window_end"),
        ({"timezone": "Mars/Olympus_Mons"}, 400, "invalid_schedule", "timezone"),
        ({"timezone": "/etc/passwd"}, 400, "invalid_schedule", "timezone"),
        ({"priority": "live"}, 422, "validation_error", None),
    ],
    ids=[
        "unknown_tier",
        "unknown_model",
        "max_tokens",
        "nul",
        "no_messages",
        "cron_out_of_range",
        "cron_words",
        "cron_seconds_field",
        "cron_never_fires",
        "every_s_and_cron",
        "no_schedule",
        "every_s_too_short",
        "ttl_zero",
        "window_hour",
        "window_format",
        "half_window",
        "unknown_timezone",
        "timezone_path",
        "unknown_field",
    ],
)
def test_invalid_registrations_are_refused_with_a_code(
    api: Api, fields: dict[str, Any], status: int, code: str, param: str | None
) -> None:
    error = api.error(api.register(api.headers(), **fields), status)

    assert error["code"] == code
    if param is not None:
        assert error["param"] == param


def test_an_update_is_checked_like_a_registration(api: Api) -> None:
    headers = api.headers()
    path = f"/v1/known-queries/{api.register(headers).json()['id']}"

    assert api.error(api.client.patch(path, json={"tier": "nope"}, headers=headers))["code"] == "unknown_tier"
    bad_cron = api.client.patch(path, json={"cron": "*/5 * *"}, headers=headers)
    assert api.error(bad_cron)["code"] == "invalid_schedule"
    both = api.client.patch(path, json={"cron": "@daily", "every_s": 600}, headers=headers)
    assert api.error(both)["code"] == "invalid_schedule"
    no_schedule = api.client.patch(path, json={"every_s": None}, headers=headers)
    assert api.error(no_schedule)["param"] == "every_s"
    bad_zone = api.client.patch(path, json={"timezone": "Nowhere/City"}, headers=headers)
    assert api.error(bad_zone)["param"] == "timezone"
    # Nothing of the refused updates was kept.
    assert api.client.get(path, headers=headers).json()["every_s"] == 3600


def test_updates_reschedule_only_when_what_or_when_changes(api: Api) -> None:
    headers = api.headers()
    kq = api.register(headers, window_start="02:00", window_end="03:00", timezone="Asia/Tokyo").json()
    path = f"/v1/known-queries/{kq['id']}"
    later = utcnow() + timedelta(hours=5)
    _set(api, kq["id"], next_run_at=later)

    disabled = api.client.patch(path, json={"enabled": False}, headers=headers).json()
    assert disabled["enabled"] is False and _at(disabled["next_run_at"]) == later

    enabled = api.client.patch(path, json={"enabled": True}, headers=headers).json()
    assert enabled["enabled"] is True and _at(enabled["next_run_at"]) < later

    _set(api, kq["id"], next_run_at=later)
    unchanged = api.client.patch(path, json={"every_s": 3600}, headers=headers).json()
    assert _at(unchanged["next_run_at"]) == later

    # A new request is a new cache key, due at once; null puts window and time zone back.
    moved = api.client.patch(
        path,
        json={"request": {"messages": QUESTION, "max_tokens": 20}, "window_start": None, "timezone": None},
        headers=headers,
    ).json()
    assert moved["cache_key"] != kq["cache_key"] and _at(moved["next_run_at"]) < later
    assert (moved["window_start"], moved["window_end"], moved["timezone"]) == ("01:00", "03:00", "UTC")
    every = api.client.patch(path, json={"every_s": 900}, headers=headers).json()
    cron = api.client.patch(path, json={"cron": "@hourly"}, headers=headers).json()
    assert (every["every_s"], every["cron"], cron["every_s"], cron["cron"]) == (900, None, None, "@hourly")


def test_the_same_request_twice_on_a_tier_is_a_conflict(api: Api) -> None:
    headers = api.headers()
    first = api.register(headers).json()

    again = api.register(headers, every_s=600, request={"messages": QUESTION, "user": "someone"})

    error = api.error(again, 409)
    assert error["code"] == "known_query_exists" and error["known_query_id"] == first["id"]
    assert api.register(headers, tier=api.other_tier).status_code == 201
    assert api.register(api.headers()).status_code == 201  # another tenant
    second = api.register(headers, request={"messages": QUESTION, "max_tokens": 9}).json()
    clash = api.client.patch(
        f"/v1/known-queries/{second['id']}", json={"request": {"messages": QUESTION}}, headers=headers
    )
    assert api.error(clash, 409)["known_query_id"] == first["id"]


def test_another_tenants_known_query_is_not_found(api: Api) -> None:
    mine, theirs = api.headers(), api.headers()
    kq = api.register(mine).json()
    path = f"/v1/known-queries/{kq['id']}"

    assert api.error(api.client.get(path, headers=theirs), 404)["code"] == "not_found"
    assert (
        api.error(api.client.patch(path, json={"every_s": 600}, headers=theirs), 404)["code"] == "not_found"
    )
    assert api.error(api.client.delete(path, headers=theirs), 404)["code"] == "not_found"
    assert api.client.get("/v1/known-queries", headers=theirs).json()["data"] == []
    cursor = api.client.get("/v1/known-queries", params={"cursor": kq["id"]}, headers=theirs)
    assert api.error(cursor, 400)["code"] == "invalid_cursor"  # another tenant's id is no cursor
    assert api.client.get(path, headers=mine).json()["every_s"] == 3600


def test_scopes_submit_to_write_read_to_read(api: Api) -> None:
    writer = api.headers({"submit"})
    reader = api.headers({"read"})

    assert api.error(api.register(reader), 403)["code"] == "insufficient_scope"
    created = api.register(writer)
    assert created.status_code == 201
    path = f"/v1/known-queries/{created.json()['id']}"
    assert api.error(api.client.get(path, headers=writer), 403)["code"] == "insufficient_scope"
    assert api.error(api.client.get("/v1/known-queries/suggestions", headers=writer), 403)
    assert api.error(api.client.patch(path, json={"every_s": 600}, headers=reader), 403)
    assert api.error(api.client.delete(path, headers=reader), 403)
    assert api.client.delete(path, headers=writer).status_code == 204


def test_the_list_pages_newest_first(api: Api) -> None:
    headers = api.headers()
    ids = [
        api.register(headers, request={"messages": QUESTION, "max_tokens": n}).json()["id"]
        for n in range(1, 6)
    ]

    first = api.client.get("/v1/known-queries", params={"limit": 3}, headers=headers).json()
    rest = api.client.get(
        "/v1/known-queries", params={"limit": 3, "cursor": first["next_cursor"]}, headers=headers
    ).json()

    assert first["has_more"] is True and rest["has_more"] is False
    assert [row["id"] for row in first["data"] + rest["data"]] == ids[::-1]


def test_suggestions_list_the_most_missed_requests_ready_to_register(api: Api) -> None:
    tenant_id, headers = api.tenant()
    popular = {"messages": [{"role": "user", "content": f"Return policy? {uuid.uuid4().hex[:6]}"}]}
    rare = {"messages": [{"role": "user", "content": "Something else entirely"}]}
    jobs = [_submit(api, headers, popular) for _ in range(3)] + [_submit(api, headers, rare)]
    assert {job["cache"]["hit"] for job in jobs} == {None}  # every one missed
    # A cached answer of the popular request gives the cost a hit would have saved.
    answer = CachedResult(jobs[0]["id"], {"choices": []}, "emu-a", "emulator", cost_usd=0.002)
    api.services.results.store(tenant_id, api.tier, jobs[0]["cache"]["key"], answer, 60)

    found = api.client.get("/v1/known-queries/suggestions", params={"hours": 2}, headers=headers)

    assert found.status_code == 200, found.text
    body = found.json()
    assert body["hours"] == 2
    top, second = body["data"]
    assert top == {
        "tier": api.tier,
        "key": jobs[0]["cache"]["key"],
        "misses": 3,
        "request": popular,
        "cost_per_call_usd": 0.002,
        "estimated_savings_usd": 0.004,
        "known_query_id": None,
    }
    assert second["misses"] == 1 and second["request"] == rare and second["estimated_savings_usd"] is None

    # Registered as it stands: the same key, and the suggestion now names it.
    kq = api.client.post(
        "/v1/known-queries",
        json={"tier": top["tier"], "request": top["request"], "cron": "@daily"},
        headers=headers,
    ).json()
    assert kq["cache_key"] == top["key"]
    again = api.client.get("/v1/known-queries/suggestions", headers=headers).json()["data"]
    assert again[0]["known_query_id"] == kq["id"]
    # Another tenant sees none of it.
    assert api.client.get("/v1/known-queries/suggestions", headers=api.headers()).json()["data"] == []
    limited = api.client.get("/v1/known-queries/suggestions", params={"limit": 1}, headers=headers)
    assert len(limited.json()["data"]) == 1
    assert (
        api.client.get("/v1/known-queries/suggestions", params={"hours": 0}, headers=headers).status_code
        == 422
    )


def _submit(api: Api, headers: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/v1/jobs", json={"tier": api.tier, "request": request}, headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _set(api: Api, query_id: str, **values: Any) -> None:
    with session_scope(api.services.engine) as session:
        session.execute(update(KnownQuery).where(KnownQuery.id == query_id).values(**values))  # type: ignore[arg-type]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
