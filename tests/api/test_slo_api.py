"""``GET /v1/slo``: objectives met, burning and exhausted, measured on crafted job rows; what
counts (live latency, platform errors, the window); whose jobs a key sees. In process, on
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import assert_error
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from tests_support import delete_tier_queues, make_test_settings, new_tenant_key

from api.keys import create_platform_key
from api.main import create_app
from api.services import Services
from workers import store
from workers.migrate import upgrade

DAY = 86_400


@dataclass
class SloApi:
    """An API whose tiers ``both`` (latency 2.5 s, errors 1 %), ``errors`` (errors 1 % only) and
    ``plain`` (none) have a one-day window."""

    client: TestClient
    both: str
    errors: str
    plain: str

    @property
    def engine(self) -> Engine:
        services: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return services.engine


@pytest.fixture
def api(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[SloApi]:
    both, errors, plain = (f"slo{uuid.uuid4().hex[:8]}" for _ in range(3))
    tiers = {
        both: {"models": ["emu-a"], "slo": {"latency_p95_s": 2.5, "error_rate": 0.01, "window_s": DAY}},
        errors: {"models": ["emu-a"], "slo": {"error_rate": 0.01, "window_s": DAY}},
        plain: {"models": ["emu-a"]},
    }
    settings = make_test_settings(tmp_path, redis_url, database_url, tiers=tiers)
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        try:
            yield SloApi(client, both, errors, plain)
        finally:
            delete_tier_queues(client.app.state.services.redis, [both, errors, plain], settings.key_prefix)  # type: ignore[attr-defined]


def add_jobs(
    engine: Engine, tenant_id: str, tier: str, count: int, ago_s: float, took_s: float, **fields: Any
) -> None:
    """``count`` jobs that ended ``ago_s`` seconds ago after ``took_s`` seconds."""
    finished = datetime.now(UTC) - timedelta(seconds=ago_s)
    values = {"status": "succeeded", "priority": "live", **fields}
    with store.session_scope(engine) as session:
        for _ in range(count):
            store.insert_job(
                session,
                tenant_id=tenant_id,
                tier=tier,
                request={"messages": []},
                job_metadata={},
                created_at=finished - timedelta(seconds=took_s),
                finished_at=finished,
                **values,
            )


def report(api: SloApi, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = api.client.get("/v1/slo", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def objective(body: dict[str, Any], tier: str, kind: str) -> dict[str, Any]:
    (found,) = [
        item
        for entry in body["tiers"]
        if entry["tier"] == tier
        for item in entry["objectives"]
        if item["objective"] == kind
    ]
    return found


def window(item: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [entry for entry in item["windows"] if entry["window"] == name]
    return found


def tenant(api: SloApi) -> tuple[str, dict[str, str]]:
    tenant_id, secret = new_tenant_key(api.engine, {"read"})
    return tenant_id, {"Authorization": f"Bearer {secret}"}


def test_objectives_met_three_hours_ago_with_what_does_not_count_left_out(api: SloApi) -> None:
    tenant_id, headers = tenant(api)
    hours3 = 3 * 3600
    add_jobs(api.engine, tenant_id, api.both, 96, hours3, 1.0)
    add_jobs(api.engine, tenant_id, api.both, 4, hours3, 5.0)  # slower than 2.5 s: 4 of the 5 allowed
    add_jobs(api.engine, tenant_id, api.both, 3, hours3, 900.0, priority="batch")  # no latency event
    add_jobs(api.engine, tenant_id, api.both, 5, hours3, 1.0, status="failed", error_code="budget_exceeded")
    add_jobs(api.engine, tenant_id, api.both, 5, hours3, 1.0, status="canceled")
    add_jobs(api.engine, tenant_id, api.both, 9, 2 * DAY, 60.0, status="failed", error_code="max_attempts")

    body = report(api, headers)

    assert (body["scope"], body["tenant_id"]) == ("tenant", tenant_id)
    assert [entry["tier"] for entry in body["tiers"]] == [api.both, api.errors]  # plain has none
    latency = objective(body, api.both, "latency")
    assert (latency["target"], latency["current"], latency["met"], latency["state"]) == (2.5, 1.0, True, "ok")
    assert latency["budget"] == {"allowed": 5.0, "consumed": 4, "remaining": 1.0, "remaining_ratio": 0.2}
    assert window(latency, "6h") | {"p95_s": None} == {
        "window": "6h",
        "seconds": 21_600,
        "events": 100,
        "bad": 4,
        "bad_ratio": 0.04,
        "burn_rate": 0.8,
        "p95_s": None,
    }
    assert window(latency, "1h")["events"] == 0 and window(latency, "1h")["burn_rate"] is None
    errors = objective(body, api.both, "errors")
    assert (errors["current"], errors["met"], errors["state"]) == (0.0, True, "ok")
    assert window(errors, "slo")["events"] == 103  # 100 live + 3 batch; not canceled, budget, or 2 days ago
    assert errors["budget"]["allowed"] == pytest.approx(1.03) and errors["budget"]["consumed"] == 0
    assert objective(body, api.errors, "errors")["state"] == "no_data"


def test_the_p95_is_the_nearest_rank_of_live_successes(api: SloApi) -> None:
    tenant_id, headers = tenant(api)
    for index in range(1, 21):  # 1 s to 20 s: rank 19 of 20 is 19 s
        add_jobs(api.engine, tenant_id, api.both, 1, 600, float(index))

    latency = objective(report(api, headers), api.both, "latency")

    assert latency["current"] == 19.0 and latency["met"] is False
    assert window(latency, "1h")["p95_s"] == 19.0 and window(latency, "5m")["p95_s"] is None
    assert window(latency, "slo")["bad"] == 18  # 3 s to 20 s


def test_a_fast_burn_is_burning_and_a_spent_budget_exhausted(api: SloApi) -> None:
    tenant_id, headers = tenant(api)
    add_jobs(api.engine, tenant_id, api.errors, 10, 60, 1.0)
    add_jobs(api.engine, tenant_id, api.errors, 10, 60, 1.0, status="failed", error_code="max_attempts")
    add_jobs(api.engine, tenant_id, api.both, 95, 10 * 3600, 1.0)
    add_jobs(
        api.engine, tenant_id, api.both, 5, 10 * 3600, 1.0, status="failed", error_code="provider_timeout"
    )

    body = report(api, headers)

    burning = objective(body, api.errors, "errors")
    assert (burning["state"], burning["met"], burning["current"]) == ("burning", False, 0.5)
    assert window(burning, "5m")["burn_rate"] == 50.0 and window(burning, "1h")["burn_rate"] == 50.0
    assert burning["budget"] == {"allowed": 0.2, "consumed": 10, "remaining": -9.8, "remaining_ratio": -49.0}
    spent = objective(body, api.both, "errors")
    assert (spent["state"], spent["current"], spent["budget"]["remaining"]) == ("exhausted", 0.05, -4.0)
    assert window(spent, "6h")["events"] == 0


def test_a_slow_burn_needs_its_short_window_too(api: SloApi) -> None:
    tenant_id, headers = tenant(api)
    # 10 % errors from 5 h to 1 h ago: burn 10 over 6h, but nothing in the last 30 minutes.
    add_jobs(api.engine, tenant_id, api.errors, 90, 3 * 3600, 1.0)
    add_jobs(
        api.engine, tenant_id, api.errors, 10, 3 * 3600, 1.0, status="failed", error_code="invalid_output"
    )

    quiet = objective(report(api, headers), api.errors, "errors")
    assert window(quiet, "6h")["burn_rate"] == 10.0 and window(quiet, "30m")["events"] == 0
    assert quiet["state"] == "exhausted"  # the budget (1 bad event of 100) is spent, not burning now

    add_jobs(api.engine, tenant_id, api.errors, 9, 120, 1.0)
    add_jobs(api.engine, tenant_id, api.errors, 1, 120, 1.0, status="failed", error_code="invalid_output")
    assert objective(report(api, headers), api.errors, "errors")["state"] == "burning"


def test_a_tenant_sees_its_jobs_and_a_platform_admin_every_tenants(api: SloApi) -> None:
    mine, headers = tenant(api)
    theirs, other_headers = tenant(api)
    add_jobs(api.engine, mine, api.errors, 10, 60, 1.0)
    add_jobs(api.engine, theirs, api.errors, 10, 60, 1.0, status="failed", error_code="max_attempts")
    with Session(api.engine) as session:
        secret = create_platform_key(session)
        session.commit()
    platform = {"Authorization": f"Bearer {secret}"}

    assert objective(report(api, headers), api.errors, "errors")["current"] == 0.0
    assert objective(report(api, other_headers), api.errors, "errors")["current"] == 1.0
    everyone = report(api, platform)
    assert (everyone["scope"], everyone["tenant_id"]) == ("all", None)
    assert window(objective(everyone, api.errors, "errors"), "1h")["events"] == 20
    one = report(api, platform, tenant_id=mine)
    assert (one["scope"], objective(one, api.errors, "errors")["current"]) == ("tenant", 0.0)
    refused = api.client.get("/v1/slo", params={"tenant_id": theirs}, headers=headers)
    assert_error(refused, 403, "insufficient_scope")
    assert_error(
        api.client.get("/v1/slo", params={"tenant_id": "ten_nobody"}, headers=platform), 404, "not_found"
    )
    assert_error(api.client.get("/v1/slo"), 401, "invalid_api_key")
