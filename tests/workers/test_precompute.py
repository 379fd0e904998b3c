"""Precompute scans with an injected clock, on SQLite and PostgreSQL with real Redis: windows
(time zones, wrapping midnight), the job each run queues, rescheduling, and the key it shares
with live requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select
from tests_support import (
    delete_tier_queues,
    fresh_postgres_database,
    make_test_settings,
    new_tenant_key,
    queued_job_ids,
)

from api.main import create_app
from schemas.tables import Job, KnownQuery
from workers.cache.results import CachedResult
from workers.celery_app import TASK_MODULES, create_celery
from workers.db import session_scope
from workers.keys import tier_queue
from workers.migrate import upgrade
from workers.precompute import _due_page, _run, run_due
from workers.runtime import Runtime
from workers.schedule import in_window, next_refresh

QUESTION = {"messages": [{"role": "user", "content": "What are your opening hours?"}]}
# The injected clock: 2030-01-01 (a Tuesday), times in UTC.
DAY = datetime(2030, 1, 1, tzinfo=UTC)


def at(hhmm: str, days: int = 0) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return DAY + timedelta(days=days, hours=hours, minutes=minutes)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test: a scan must see only this test's known queries."""
    with fresh_postgres_database("switchyard_precompute") as url:
        yield url


class Env:
    """A runtime for the scans and an in-process API on the same settings."""

    def __init__(self, rt: Runtime, client: TestClient, tier: str, headers: dict[str, str]) -> None:
        self.rt, self.client, self.tier, self.headers = rt, client, tier, headers

    def register(self, **fields: Any) -> dict[str, Any]:
        schedule = {} if "cron" in fields else {"every_s": 3600}
        body = {"tier": self.tier, "request": QUESTION, **schedule, "ttl_s": 7200, **fields}
        response = self.client.post("/v1/known-queries", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def row(self, query_id: str) -> KnownQuery:
        with Session(self.rt.engine) as session:
            row = session.get(KnownQuery, query_id)
            assert row is not None
            return row

    def jobs(self) -> list[Job]:
        with Session(self.rt.engine) as session:
            return list(session.exec(select(Job).where(col(Job.tier) == self.tier)))

    def queued(self) -> list[str]:
        return queued_job_ids(self.rt.redis, tier_queue(self.tier, "precompute"))

    def set(self, query_id: str, **values: Any) -> None:
        with session_scope(self.rt.engine) as session:
            session.execute(update(KnownQuery).where(col(KnownQuery.id) == query_id).values(**values))


@pytest.fixture
def env(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Env]:
    tier = f"pre{uuid.uuid4().hex[:8]}"
    settings = make_test_settings(tmp_path, redis_url, database_url, tiers={tier: {"models": ["emu-a"]}})
    upgrade(settings)
    rt = Runtime(settings=settings, celery=create_celery(settings))
    with TestClient(create_app(settings)) as client:
        _, secret = new_tenant_key(rt.engine)
        yield Env(rt, client, tier, {"Authorization": f"Bearer {secret}"})
    delete_tier_queues(rt.redis, [tier], settings.key_prefix)
    rt.engine.dispose()
    rt.redis.close()


def test_a_due_query_inside_its_window_queues_a_precompute_job(env: Env) -> None:
    kq = env.register(window_start="01:00", window_end="05:00", timezone="UTC")
    now = at("03:00")

    report = run_due(env.rt, now)

    assert (report.due, report.ran, report.outside_window) == (1, 1, 0)
    [job] = env.jobs()
    assert job.priority == "precompute" and job.status == "queued" and job.published_at is not None
    assert job.job_metadata == {"known_query": kq["id"]}
    assert job.cache_mode == "exact"
    assert job.cache == {"mode": "exact", "ttl_s": 7200, "key": kq["cache_key"], "hit": None}
    assert job.request == QUESTION and job.tenant_id == env.row(kq["id"]).tenant_id
    assert env.queued() == [job.id]  # on tier.<tier>.precompute, the spare-capacity lane
    row = env.row(kq["id"])
    assert row.last_run_at == now and row.last_job_id == job.id
    assert row.next_run_at == now + timedelta(hours=1)  # every_s, well inside the TTL
    shown = env.client.get(f"/v1/known-queries/{kq['id']}", headers=env.headers).json()
    assert shown["last_job_id"] == job.id
    # Not due again until then.
    assert run_due(env.rt, now + timedelta(minutes=30)).due == 0


def test_a_due_query_outside_its_window_waits_for_it(env: Env) -> None:
    kq = env.register(window_start="01:00", window_end="05:00", timezone="UTC")
    due_since = env.row(kq["id"]).next_run_at

    for now in (at("05:00"), at("12:00"), at("00:59", days=1)):
        report = run_due(env.rt, now)
        assert (report.due, report.ran, report.outside_window) == (1, 0, 1)
    assert env.jobs() == [] and env.queued() == []
    assert env.row(kq["id"]).next_run_at == due_since  # unchanged: it waits

    assert run_due(env.rt, at("01:00", days=1)).ran == 1


@pytest.mark.parametrize(
    ("now", "runs"),
    [("22:00", True), ("23:59", True), ("00:00", True), ("03:59", True), ("04:00", False), ("12:00", False)],
)
def test_a_window_may_wrap_midnight(env: Env, now: str, runs: bool) -> None:
    env.register(window_start="22:00", window_end="04:00", timezone="UTC")

    assert run_due(env.rt, at(now)).ran == int(runs)
    assert len(env.queued()) == int(runs)


def test_the_window_is_read_in_the_querys_time_zone(env: Env) -> None:
    env.register(window_start="01:00", window_end="05:00", timezone="Asia/Tokyo")  # 16:00-20:00 UTC

    assert run_due(env.rt, at("03:00")).outside_window == 1
    assert run_due(env.rt, at("16:30")).ran == 1


def test_the_next_refresh_comes_before_the_answer_expires(env: Env) -> None:
    all_day = {"window_start": "00:00", "window_end": "00:00"}
    short = env.register(every_s=3600, ttl_s=1800, **all_day)
    cron = env.register(cron="30 2 * * *", ttl_s=3 * 86_400, request={**QUESTION, "max_tokens": 9}, **all_day)
    capped = env.register(cron="30 2 * * *", ttl_s=3600, request={**QUESTION, "max_tokens": 8}, **all_day)
    now = at("03:00")

    assert run_due(env.rt, now).ran == 3

    # 10 % of the TTL left (refresh_margin 0.1): 1,800 s * 0.9 after the run.
    assert env.row(short["id"]).next_run_at == now + timedelta(seconds=1620)
    assert env.row(cron["id"]).next_run_at == at("02:30", days=1)  # the next cron time
    assert env.row(capped["id"]).next_run_at == now + timedelta(seconds=3240)  # cron, capped by the TTL


def test_a_query_whose_last_run_has_not_ended_is_not_run_again(env: Env) -> None:
    kq = env.register(every_s=3600, ttl_s=7200)
    run_due(env.rt, at("01:00"))
    [first] = env.jobs()

    report = run_due(env.rt, at("02:30"))

    assert (report.due, report.busy, report.ran) == (1, 1, 0) and len(env.jobs()) == 1
    with session_scope(env.rt.engine) as session:
        session.execute(update(Job).where(col(Job.id) == first.id).values(status="succeeded"))
    assert run_due(env.rt, at("02:31")).ran == 1
    assert env.row(kq["id"]).last_job_id != first.id


def test_disabled_queries_and_stale_reads_do_not_run(env: Env) -> None:
    kq = env.register()
    env.client.patch(f"/v1/known-queries/{kq['id']}", json={"enabled": False}, headers=env.headers)
    assert run_due(env.rt, at("02:00")).due == 0

    env.client.patch(f"/v1/known-queries/{kq['id']}", json={"enabled": True}, headers=env.headers)
    [stale] = _due_page(env.rt, at("02:00"), None)
    assert _run(env.rt, stale, at("02:00")) is not None
    # A second scan holding the same read loses the conditional update: no second job.
    assert _run(env.rt, stale, at("02:00")) is None
    assert len(env.jobs()) == 1 and len(env.queued()) == 1


def test_a_scan_pages_through_due_queries_up_to_its_limit(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.precompute.PAGE", 2)
    for tokens in range(1, 6):
        env.register(request={**QUESTION, "max_tokens": tokens})
    env.register(request={**QUESTION, "max_tokens": 99}, window_start="12:00", window_end="13:00")

    first = run_due(env.rt, at("02:00"), max_runs=3)
    second = run_due(env.rt, at("02:00"))

    assert (first.ran, second.ran, second.outside_window) == (3, 2, 1)
    assert len(env.queued()) == 5 and all(job.published_at is not None for job in env.jobs())


def test_a_query_on_a_tier_gone_from_the_config_is_rescheduled_not_run(env: Env) -> None:
    kq = env.register()
    env.set(kq["id"], tier="retired")

    report = run_due(env.rt, at("02:00"))

    assert (report.unknown_tier, report.ran) == (1, 0) and env.jobs() == []
    assert env.row(kq["id"]).next_run_at == at("03:00")


def test_the_precomputed_answer_serves_the_next_live_job(env: Env) -> None:
    kq = env.register(request={**QUESTION, "temperature": 0, "user": "batch"})
    run_due(env.rt, at("02:00"))
    [job] = env.jobs()
    # What the worker's ResultCaching middleware does with the answer: store it under the job's key.
    answer = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant"}}]}
    assert job.cache is not None
    fresh = CachedResult(job.id, answer, "emu-a", "emulator", cost_usd=0.001)
    env.rt.results.store(job.tenant_id, job.tier, job.cache["key"], fresh, job.cache["ttl_s"])

    live = env.client.post(
        "/v1/jobs",
        json={"tier": env.tier, "request": {**QUESTION, "temperature": 0.0, "user": "someone"}},
        headers=env.headers,
    )

    assert live.status_code == 200, live.text
    body = live.json()
    assert body["cache"]["key"] == kq["cache_key"] == job.cache["key"]
    assert body["cache"]["hit"] == "exact" and body["cache"]["source_job"] == job.id
    assert body["result"] == answer and body["cost_usd"] == 0


def test_beat_scans_for_due_queries_on_the_maintenance_queue(tmp_path: Path, redis_url: str) -> None:
    settings = make_test_settings(tmp_path, redis_url, precompute={"scan_interval_s": 30})
    entry = create_celery(settings).conf.beat_schedule["precompute"]

    assert "tasks.precompute" in TASK_MODULES
    assert entry["task"] == "switchyard.precompute" and entry["schedule"] == 30
    assert entry["options"]["queue"] == f"{settings.key_prefix}.maintenance"


@pytest.mark.parametrize(
    ("start", "end", "local", "inside"),
    [
        ("01:00", "05:00", "01:00", True),
        ("01:00", "05:00", "05:00", False),
        ("22:00", "04:00", "23:00", True),
        ("22:00", "04:00", "21:59", False),
        ("00:00", "00:00", "13:37", True),
    ],
)
def test_in_window(start: str, end: str, local: str, inside: bool) -> None:
    assert in_window(at(local), start, end, "UTC") is inside


def test_cron_is_read_in_the_querys_time_zone_across_daylight_saving() -> None:
    # Paris moves to summer time on 2030-03-31: 03:30 local is 02:30 UTC before, 01:30 UTC after.
    before = datetime(2030, 3, 29, 12, tzinfo=UTC)
    after = datetime(2030, 3, 31, 12, tzinfo=UTC)
    common: dict[str, Any] = {"every_s": None, "ttl_s": 7 * 86_400, "refresh_margin": 0.1}

    assert next_refresh(before, cron="30 3 * * *", timezone="Europe/Paris", **common) == datetime(
        2030, 3, 30, 2, 30, tzinfo=UTC
    )
    assert next_refresh(after, cron="30 3 * * *", timezone="Europe/Paris", **common) == datetime(
        2030, 4, 1, 1, 30, tzinfo=UTC
    )
