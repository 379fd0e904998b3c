"""The exact cache at the API, in process on real Redis: fast path, keys, isolation, stats."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from tests_support import (
    completion_body,
    delete_tier_queues,
    make_test_settings,
    new_tenant_key,
    queued_job_ids,
)

from api.main import create_app
from schemas.tables import WebhookDelivery
from workers import store
from workers.cache.results import CachedResult
from workers.keys import tier_queue
from workers.migrate import upgrade

ANSWER = completion_body("emu-a", "Paris.", prompt_tokens=9, completion_tokens=2, created=0)
QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


class Api:
    def __init__(self, client: TestClient, tiers: list[str]) -> None:
        self.client = client
        self.tier, self.other_tier = tiers

    @property
    def services(self) -> Any:
        return self.client.app.state.services  # type: ignore[attr-defined]

    def headers(self, scopes: set[str] | None = None) -> dict[str, str]:
        _, secret = new_tenant_key(self.services.engine, scopes or {"submit", "read", "admin"})
        return {"Authorization": f"Bearer {secret}"}

    def submit(self, headers: dict[str, str], tier: str | None = None, **fields: Any) -> Any:
        request = {"messages": QUESTION, **fields.pop("request", {})}
        body = {"tier": tier or self.tier, "request": request, **fields}
        return self.client.post("/v1/jobs", json=body, headers=headers)

    def answer(self, job: dict[str, Any]) -> None:
        """What a worker does after the call: store the answer under the job's key."""
        fresh = CachedResult(job["id"], ANSWER, "emu-a", "emulator", cost_usd=0.0125)
        tenant = job_tenant(self, job["id"])
        self.services.results.store(tenant, job["tier"], job["cache"]["key"], fresh, job["cache"]["ttl_s"])


def job_tenant(api: Api, job_id: str) -> str:
    job = store.load_job(api.services.engine, job_id)
    assert job is not None
    return job.tenant_id


@pytest.fixture
def api(tmp_path: Path, redis_url: str) -> Iterator[Api]:
    tiers = [f"cache{uuid.uuid4().hex[:8]}" for _ in range(2)]
    settings = make_test_settings(tmp_path, redis_url, tiers={name: {"models": ["emu-a"]} for name in tiers})
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        yield Api(client, tiers)
        delete_tier_queues(client.app.state.services.redis, tiers, settings.key_prefix)  # type: ignore[attr-defined]


def test_an_identical_request_is_answered_at_once_from_the_cache(api: Api) -> None:
    headers = api.headers()
    first = api.submit(headers).json()
    assert first["cache"]["mode"] == "exact" and len(first["cache"]["key"]) == 64
    api.answer(first)

    hit = api.submit(headers)

    assert hit.status_code == 200
    job = hit.json()
    assert job["status"] == "succeeded" and job["result"] == ANSWER and job["cost_usd"] == 0
    assert job["cache"]["hit"] == "exact" and job["cache"]["source_job"] == first["id"]
    assert job["usage"]["total_tokens"] == 0 and job["attempts"] == 0
    # Nothing was queued for the hit, and the job can be read back like any other.
    assert queued_job_ids(api.services.redis, tier_queue(api.tier, "live")) == [first["id"]]
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["status"] == "succeeded"


@pytest.mark.parametrize(
    "change",
    [
        {"request": {"temperature": 0.7}, "cache": "exact"},
        {"request": {"max_tokens": 5}},
        {"request": {"messages": [{"role": "system", "content": "Be verbose."}, QUESTION[1]]}},
        {"request": {"seed": 7}},
        {"request": {"response_format": {"type": "json_object"}}},
    ],
    ids=["temperature", "max_tokens", "system_prompt", "seed", "response_format"],
)
def test_any_output_shaping_change_misses(api: Api, change: dict[str, Any]) -> None:
    headers = api.headers()
    api.answer(api.submit(headers).json())

    assert api.submit(headers, **change).status_code == 202


def test_another_tier_or_tenant_misses(api: Api) -> None:
    headers = api.headers()
    api.answer(api.submit(headers).json())

    assert api.submit(headers, tier=api.other_tier).status_code == 202
    other = api.submit(api.headers())
    assert other.status_code == 202 and other.json()["cache"]["hit"] is None


def test_the_user_field_does_not_change_the_key(api: Api) -> None:
    headers = api.headers()
    api.answer(api.submit(headers, request={"user": "alice"}).json())

    assert api.submit(headers, request={"user": "bob"}).status_code == 200


def test_temperature_above_zero_is_not_cached_unless_asked(api: Api) -> None:
    headers = api.headers()
    varied = api.submit(headers, request={"temperature": 0.9}).json()
    assert varied["cache"]["mode"] == "off" and varied["cache"]["key"] is None
    asked = api.submit(headers, request={"temperature": 0.9}, cache="exact").json()
    assert asked["cache"]["mode"] == "exact" and asked["cache"]["key"]


def test_cache_off_neither_reads_nor_counts(api: Api) -> None:
    headers = api.headers()
    api.answer(api.submit(headers).json())

    off = api.submit(headers, cache="off")

    assert off.status_code == 202 and off.json()["cache"] == {
        "mode": "off",
        "ttl_s": 86400,
        "key": None,
        "hit": None,
    }


def test_ttl_comes_from_the_job_or_the_tier(api: Api) -> None:
    headers = api.headers()
    job = api.submit(headers, cache_ttl=60).json()
    api.answer(job)
    tenant = job_tenant(api, job["id"])
    ttl = api.services.redis.ttl(api.services.keys.exact_entry(tenant, api.tier, job["cache"]["key"]))
    assert 55 <= ttl <= 60
    assert api.submit(headers, cache_ttl=0).status_code == 422


def test_stats_count_hits_misses_and_saved_cost(api: Api) -> None:
    headers = api.headers()
    api.answer(api.submit(headers).json())
    api.submit(headers)
    api.submit(headers)

    stats = api.client.get("/v1/cache/stats", headers=headers).json()

    row = stats["tiers"][api.tier]
    exact = row["exact"]
    assert (exact["hits"], exact["misses"], exact["hit_rate"]) == (2, 1, pytest.approx(0.6667))
    assert exact["entries"] == 1 and exact["bytes"] > 0 and row["semantic"]["entries"] == 0
    assert row["saved_usd"] == pytest.approx(0.025)
    assert row["entries"] == 1 and row["bytes"] > 0


def test_invalidation_by_tier_and_key_needs_admin(api: Api) -> None:
    headers = api.headers()
    first = api.submit(headers).json()
    api.answer(first)
    reader = api.headers({"read", "submit"})

    assert api.client.delete(f"/v1/cache/tiers/{api.tier}", headers=reader).status_code == 403
    key_path = f"/v1/cache/tiers/{api.tier}/entries/{first['cache']['key']}"
    assert api.client.delete(key_path, headers=headers).json() == {"deleted": 1}
    assert api.submit(headers).status_code == 202
    assert (
        api.client.delete("/v1/cache/tiers/nope", headers=headers).json()["error"]["code"] == "unknown_tier"
    )


def test_invalidating_a_tenant_leaves_other_tenants_alone(api: Api) -> None:
    mine, theirs = api.headers(), api.headers()
    api.answer(api.submit(mine).json())
    api.answer(api.submit(theirs).json())

    assert api.client.delete("/v1/cache", headers=mine).json() == {"deleted": 1}
    assert api.submit(mine).status_code == 202
    assert api.submit(theirs).status_code == 200


def test_a_replayed_idempotency_key_answers_a_cache_hit_as_the_first_time(api: Api) -> None:
    headers = api.headers()
    api.answer(api.submit(headers).json())
    keyed = {**headers, "Idempotency-Key": "hit-1"}

    first, again = api.submit(keyed), api.submit(keyed)

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]


def test_a_cache_hit_is_announced_like_any_end_so_its_callback_url_gets_a_webhook(api: Api) -> None:
    headers = api.headers()
    api.answer(api.submit(headers).json())

    hit = api.submit(headers, callback_url="https://example.com/hooks/switchyard").json()

    with Session(api.services.engine) as session:
        [delivery] = session.exec(select(WebhookDelivery).where(WebhookDelivery.job_id == hit["id"])).all()
    assert delivery.event_type == "job.succeeded" and delivery.url == "https://example.com/hooks/switchyard"
    assert json.loads(delivery.body)["data"]["cache"]["hit"] == "exact"
