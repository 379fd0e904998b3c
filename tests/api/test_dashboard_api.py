"""``GET /v1/dashboard`` and ``GET /v1/jobs/{id}/timeline``: the figures of what the key may see,
checked against the rows; the pages and their assets. In process, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from sqlalchemy import func, select
from sqlmodel import Session
from tests_support import new_tenant_key

from api.keys import create_platform_key
from schemas.tables import utcnow
from workers import store, usage_rollups
from workers.dashboard_queries import percentile
from workers.middleware.usage import usage_row
from workers.usage_sources import USAGE


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[ApiHarness]:
    with open_api(
        ApiHarness, tmp_path, redis_url, database_url, {"tier": ["emu-a"], "other_tier": ["emu-b"]}
    ) as api:
        yield api


def run_job(
    api: ApiHarness,
    tenant_id: str,
    latencies: list[float],
    outcomes: list[str] | None = None,
    error_code: str | None = None,
    model: str = "emu-a",
    ago_s: float = 5.0,
) -> str:
    """A job of ``api.tier`` that made one call per latency and ended ``ago_s`` ago, as a worker ends it."""
    with store.session_scope(api.engine) as session:
        job = store.insert_job(session, tenant_id=tenant_id, tier=api.tier, request={"messages": []})
    at = utcnow() - timedelta(seconds=ago_s)
    running = store.claim_job(api.engine, job.id, 60)
    assert running is not None
    outcomes = outcomes or ["ok"] * len(latencies)
    entries = [
        {
            "attempt": attempt,
            "model": model,
            "provider": "emulator",
            "outcome": outcome,
            "latency_ms": latency,
        }
        | {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.001}
        for attempt, (latency, outcome) in enumerate(zip(latencies, outcomes, strict=True), start=1)
    ]
    rows = [usage_row(job.id, tenant_id, api.tier, e).model_copy(update={"created_at": at}) for e in entries]
    with api.engine.begin() as connection:  # the earlier attempts' calls, as their workers settled them
        for usage in rows[:-1]:
            connection.execute(USAGE.insert(), usage.model_dump(exclude={"id"}))
            usage_rollups.add(connection, [usage_rollups.call_figures(usage, {"priority": "live"})])
    status = "failed" if error_code else "succeeded"
    fields = {"status": status, "finished_at": at, "model": model, "provider": "emulator"}
    fields |= {"error_code": error_code, "error_message": "refused" if error_code else None}
    assert store.finish_job(
        api.engine, running, rows[-1], attempt_log=entries, attempts=len(entries), **fields
    )
    return job.id


def figures(api: ApiHarness, secret: str) -> dict[str, Any]:
    response = api.client.get("/v1/dashboard", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_tenant_sees_its_own_jobs_calls_and_failures(api: ApiHarness) -> None:
    tenant_id, secret = new_tenant_key(api.engine, {"read"})
    other_id, other_secret = new_tenant_key(api.engine, {"read"})
    for latency in (10.0, 20.0, 30.0, 40.0):
        run_job(api, tenant_id, [latency])
    failed = run_job(
        api, tenant_id, [50.0, 60.0], ["rate_limited", "provider_bad_request"], "provider_bad_request"
    )
    run_job(api, tenant_id, [5.0], ago_s=300)  # ended five minutes ago: in the window, not the last minute
    run_job(api, other_id, [999.0], error_code="max_attempts")

    body = figures(api, secret)

    assert (body["scope"], body["tenant_id"], body["global_figures"]) == ("tenant", tenant_id, False)
    assert body["throughput"]["ended"] == 5 and body["throughput"]["submitted"] == 6
    assert body["throughput"]["ended_by_status"] == {"succeeded": 4, "failed": 1}
    assert body["jobs"] | {"window_s": 0} == {
        "window_s": 0,
        "ended": 6,
        "failed": 1,
        "failure_rate": round(1 / 6, 4),
        "by_error_code": {"provider_bad_request": 1},
        "capped": False,
    }
    calls = body["calls"]
    assert (calls["calls"], calls["errors"], calls["rate_limited"]) == (7, 2, 1)
    assert calls["by_outcome"] == {"ok": 5, "rate_limited": 1, "provider_bad_request": 1}
    [model] = calls["models"]
    assert (model["model"], model["calls"], model["p50_ms"], model["p95_ms"], model["p99_ms"]) == (
        "emu-a",
        7,
        30.0,
        60.0,
        60.0,
    )
    assert [job["id"] for job in body["failed_jobs"]] == [failed]
    assert body["failed_jobs"][0]["error_code"] == "provider_bad_request"
    assert body["spend"]["calls_today"] == 7 and body["spend"]["today_usd"] == pytest.approx(0.007)
    assert (body["cache"]["jobs_today"], body["cache"]["hits_today"]) == (6, 0)
    assert body["queues"]["tiers"] is None and body["limiter"]["models"] is None
    assert body["limiter"]["tenant"]["id"] == tenant_id
    assert (body["webhooks"]["dead_letters"], body["kill_switches"]) == (0, [])

    other = figures(api, other_secret)
    assert (other["jobs"]["ended"], other["calls"]["calls"], other["failed_jobs"][0]["error_code"]) == (
        1,
        1,
        "max_attempts",
    )


def test_the_platform_admin_sees_every_tenant_and_the_global_figures(api: ApiHarness) -> None:
    first, _ = new_tenant_key(api.engine, {"read"})
    second, admin_secret = new_tenant_key(api.engine, {"read", "admin"})
    run_job(api, first, [10.0])
    run_job(api, second, [20.0], error_code="provider_timeout")
    with Session(api.engine) as session:
        platform_secret = create_platform_key(session)
        session.commit()
    since = utcnow() - timedelta(minutes=15)

    body = figures(api, platform_secret)

    with api.engine.connect() as connection:
        calls = connection.execute(select(func.count()).where(USAGE.c.created_at >= since)).scalar_one()
    assert (body["scope"], body["global_figures"]) == ("platform", True)
    assert body["calls"]["calls"] == calls >= 2
    assert {job["tenant_id"] for job in body["failed_jobs"]} >= {second}
    assert {tier["tier"] for tier in body["queues"]["tiers"]} >= {api.tier, api.other_tier}
    admin = figures(api, admin_secret)  # a tenant admin: its tenant's jobs, every queue
    assert (admin["scope"], admin["global_figures"], admin["calls"]["calls"]) == ("tenant", True, 1)


def test_a_job_timeline_shows_each_attempt_and_only_the_owner_sees_the_content(api: ApiHarness) -> None:
    tenant_id, secret = new_tenant_key(api.engine, {"read"})
    _, stranger = new_tenant_key(api.engine, {"read"})
    job_id = run_job(api, tenant_id, [50.0, 60.0], ["provider_unavailable", "ok"], ago_s=0)
    with Session(api.engine) as session:
        platform_secret = create_platform_key(session)
        session.commit()

    response = api.client.get(f"/v1/jobs/{job_id}/timeline", headers={"Authorization": f"Bearer {secret}"})

    assert response.status_code == 200, response.text
    body = response.json()
    kinds = [event["kind"] for event in body["events"]]
    assert kinds[0] == "submitted" and kinds.count("attempt") == 2 and "ended" in kinds
    assert (body["status"], body["content_shown"], body["request"]) == ("succeeded", True, {"messages": []})
    missing = api.client.get(f"/v1/jobs/{job_id}/timeline", headers={"Authorization": f"Bearer {stranger}"})
    assert_error(missing, 404, "not_found")
    platform = api.client.get(
        f"/v1/jobs/{job_id}/timeline", headers={"Authorization": f"Bearer {platform_secret}"}
    ).json()
    assert (platform["content_shown"], platform["request"], len(platform["events"])) == (
        False,
        None,
        len(kinds),
    )


def test_the_pages_and_assets_are_served_from_here_only(api: ApiHarness) -> None:
    page = api.client.get("/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "://" not in page.text  # nothing loaded from elsewhere
    assert api.client.get("/dashboard/jobs/job_abc").status_code == 200
    for asset in ("dashboard.js", "job.js", "common.js", "dashboard.css"):
        assert api.client.get(f"/dashboard/assets/{asset}").status_code == 200
    assert_error(api.client.get("/dashboard/assets/dashboard_data.py"), 404, "not_found")
    assert api.client.get("/dashboard/assets/..%2Froutes%2Fdashboard.py").status_code == 404
    assert_error(api.client.get("/v1/dashboard"), 401, "invalid_api_key")


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert (percentile([7.0], 0.99), percentile([], 0.5)) == (7.0, 0.0)
