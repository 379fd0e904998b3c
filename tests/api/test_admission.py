"""Admission control and tenant limits at the API, in process, on real Redis; no worker runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from tests_support import delete_tier_queues, make_test_settings

from api.keys import create_key, create_tenant
from api.main import create_app
from workers.migrate import upgrade

# emu-rl allows 10 requests and 4,000 tokens a minute: with max_tokens 256 (+100 prompt
# expected) that drains 1 job every 6 s, so 20 s of live queue is 3 jobs.
TIER_LIMITS = {"models": ["emu-rl"], "max_queue_seconds": 20, "max_queue_depth": 6}
READ_WRITE = frozenset({"submit", "read"})


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> Iterator[TestClient]:
    tier = f"adm{uuid.uuid4().hex[:8]}"
    settings = make_test_settings(tmp_path, redis_url, tiers={tier: TIER_LIMITS})
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        client.tier = tier  # type: ignore[attr-defined]
        yield client
        delete_tier_queues(client.app.state.services.redis, [tier], settings.key_prefix)  # type: ignore[attr-defined]


def tenant_headers(client: TestClient, scopes: frozenset[str] = READ_WRITE, **limits: Any) -> dict[str, str]:
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        tenant = create_tenant(session, f"t-{uuid.uuid4().hex[:8]}", **limits)
        session.flush()
        secret = create_key(session, tenant.id, set(scopes))
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def submit(client: TestClient, headers: dict[str, str], priority: str = "live") -> Any:
    body = {
        "tier": client.tier,  # type: ignore[attr-defined]
        "priority": priority,
        "request": {"messages": [{"role": "user", "content": "Summarise the memo."}]},
    }
    return client.post("/v1/jobs", json=body, headers=headers)


def test_a_saturated_tier_refuses_live_jobs_with_retry_after_but_takes_batch(client: TestClient) -> None:
    headers = tenant_headers(client)
    assert [submit(client, headers).status_code for _ in range(4)] == [202] * 4

    refused = submit(client, headers)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "tier_saturated" and error["tier"] == client.tier  # type: ignore[attr-defined]
    # 4 queued live jobs need just over 24 s (the window carries a 0.05 s margin) against a
    # 20 s maximum: come back in 5 s.
    assert refused.headers["Retry-After"] == "5"
    assert submit(client, headers, "batch").status_code == 202


def test_batch_is_accepted_up_to_the_hard_queue_cap(client: TestClient) -> None:
    headers = tenant_headers(client)
    statuses = [submit(client, headers, "batch").status_code for _ in range(7)]

    assert statuses == [202] * 6 + [429]
    refused = submit(client, headers, "batch")
    assert refused.json()["error"]["code"] == "queue_full" and int(refused.headers["Retry-After"]) >= 1


def test_a_tenant_over_its_submissions_per_minute_gets_429(client: TestClient) -> None:
    limited, other = tenant_headers(client, rpm_limit=2), tenant_headers(client)
    assert [submit(client, limited, "batch").status_code for _ in range(2)] == [202, 202]

    refused = submit(client, limited, "batch")

    assert refused.status_code == 429 and refused.json()["error"]["code"] == "tenant_rate_limited"
    assert 50 <= int(refused.headers["Retry-After"]) <= 60
    assert submit(client, other, "batch").status_code == 202  # other tenants are not affected


def test_a_tenants_key_sees_its_own_limits_and_backlog_but_no_global_figures(client: TestClient) -> None:
    headers = tenant_headers(client, rpm_limit=50, max_running_jobs=3)
    for priority in ("live", "live", "batch"):
        submit(client, headers, priority)
    submit(client, tenant_headers(client))  # another tenant's job: not in this backlog

    response = client.get("/v1/limits", headers=headers)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["models"] is None and report["tiers"] is None  # every tenant's traffic: admin only
    assert report["backlog"] == [
        {"tier": client.tier, "queued": {"live": 2, "batch": 1, "precompute": 0}, "running": 0}  # type: ignore[attr-defined]
    ]
    assert report["tenant"]["rpm"] == 50 and report["tenant"]["submissions_used"] == 3
    assert report["tenant"]["max_running_jobs"] == 3 and report["tenant"]["running"] == 0


def test_an_admin_key_also_sees_every_model_and_tier(client: TestClient) -> None:
    headers = tenant_headers(client, READ_WRITE | {"admin"}, rpm_limit=50, max_running_jobs=3)
    for _ in range(2):
        submit(client, headers)

    report = client.get("/v1/limits", headers=headers).json()

    model = next(m for m in report["models"] if m["model"] == "emu-rl")
    assert (model["rpm"], model["tpm"], model["factor"], model["paused_s"]) == (10, 4000, 1.0, 0.0)
    assert model["requests_headroom"] == 10
    tier = next(t for t in report["tiers"] if t["tier"] == client.tier)  # type: ignore[attr-defined]
    assert tier["queued"] == {"live": 2, "batch": 0, "precompute": 0}
    assert tier["live_drain_s"] == pytest.approx(12.0, rel=0.01) and tier["live_saturated"] is False
    assert report["tenant"]["rpm"] == 50 and report["tenant"]["submissions_used"] == 2
    assert report["tenant"]["max_running_jobs"] == 3


def test_limits_need_a_key(client: TestClient) -> None:
    assert client.get("/v1/limits").status_code == 401
