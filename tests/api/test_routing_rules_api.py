"""Routing by cost through the API: a job lands on the queue of the tier its rules pick, records
the rule, and auto tiers pick the cheapest accepting tier or refuse with ``no_tier_accepts``;
batches route each line. No worker runs, so jobs stay queued where routing put them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, col, select
from tests_support import database_url_for, delete_tier_queues, make_test_settings, queued_job_ids

from api.main import create_app
from schemas.tables import Job
from workers.migrate import upgrade

SHORT = [{"role": "user", "content": "Is this message spam? 'You won a prize'"}]
LONG = [
    {"role": "user", "content": "Summarise this report. " + "The quarter went well. " * 80}
]  # ~470 tokens
HUGE = [{"role": "user", "content": "x" * 5000}]  # ~1257 tokens: over what small accepts
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


@dataclass
class Api(ApiHarness):
    """The API with a large tier routing to a small one, and two auto tiers over them."""

    auto: str = ""
    picky: str = ""

    @property
    def large(self) -> str:
        return self.tier

    @property
    def small(self) -> str:
        return self.other_tier

    def submit(self, auth: dict[str, str], tier: str, messages: list[Any], **fields: Any) -> Any:
        request = {"messages": messages, **fields.pop("request", {})}
        return self.client.post("/v1/jobs", json={"tier": tier, "request": request, **fields}, headers=auth)

    def queued(self, tier: str, priority: str = "live") -> list[str]:
        return queued_job_ids(self.redis, f"tier.{tier}.{priority}")


def routing_config(large: str, small: str, auto: str, picky: str) -> dict[str, Any]:
    """The documented example (infra/switchyard.toml) on fresh tier names."""
    rules = [
        {"name": "short-to-small", "tier": small, "when": {"max_prompt_tokens": 300, "json_schema": False}},
        {"name": "easy-tasks", "tier": small, "when": {"metadata": {"task": ["classify", "extract"]}}},
    ]
    return {
        "tiers": {
            large: {"models": ["emu-b"], "default_max_tokens": 64, "rules": rules},
            small: {
                "models": ["emu-a"],
                "default_max_tokens": 64,
                "accepts": {"max_prompt_tokens": 1000, "json_schema": False},
            },
        },
        "auto_tiers": {auto: {"tiers": [small, large]}, picky: {"tiers": [small]}},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("routing")
    large, small, auto, picky = (f"rt{uuid.uuid4().hex[:8]}" for _ in range(4))
    config = routing_config(large, small, auto, picky)
    settings = make_test_settings(tmp, redis_url, database_url_for(request, tmp), **config)
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings, tier=large, other_tier=small, auto=auto, picky=picky)
        try:
            yield api
        finally:
            delete_tier_queues(api.redis, [large, small], settings.key_prefix)


@pytest.fixture
def auth(api: Api) -> dict[str, str]:
    return api.tenant()


def test_a_short_prompt_to_large_lands_on_small_with_its_rule_recorded(
    api: Api, auth: dict[str, str]
) -> None:
    response = api.submit(auth, api.large, SHORT)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["tier"] == api.small
    assert job["routing"] == {"rule": "short-to-small", "from": api.large, "to": api.small}
    assert job["id"] in api.queued(api.small) and job["id"] not in api.queued(api.large)
    shown = api.client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert shown["routing"] == job["routing"] and shown["tier"] == api.small


def test_a_long_prompt_stays_on_large_without_a_record(api: Api, auth: dict[str, str]) -> None:
    job = api.submit(auth, api.large, LONG).json()
    assert (job["tier"], job["routing"]) == (api.large, None)
    assert job["id"] in api.queued(api.large)


def test_the_metadata_rule_routes_a_long_easy_task(api: Api, auth: dict[str, str]) -> None:
    job = api.submit(auth, api.large, LONG, metadata={"task": "extract", "team": "ops"}).json()
    assert job["routing"] == {"rule": "easy-tasks", "from": api.large, "to": api.small}
    assert job["id"] in api.queued(api.small)
    other = api.submit(auth, api.large, LONG, metadata={"task": "write"}).json()
    assert other["tier"] == api.large


def test_a_json_schema_request_is_not_sent_by_a_plain_text_rule(api: Api, auth: dict[str, str]) -> None:
    job = api.submit(auth, api.large, SHORT, request={"response_format": JSON_SCHEMA}).json()
    assert (job["tier"], job["routing"]) == (api.large, None)


def test_a_job_naming_its_model_is_not_routed(api: Api, auth: dict[str, str]) -> None:
    job = api.submit(auth, api.large, SHORT, request={"model": "emu-b"}).json()
    assert (job["tier"], job["routing"]) == (api.large, None)


def test_auto_picks_the_cheapest_accepting_tier(api: Api, auth: dict[str, str]) -> None:
    job = api.submit(auth, api.auto, SHORT).json()
    assert job["tier"] == api.small and job["id"] in api.queued(api.small)
    routing = job["routing"]
    assert (routing["rule"], routing["from"], routing["to"]) == ("auto", api.auto, api.small)
    small, large = routing["candidates"]
    assert (small["tier"], large["tier"]) == (api.small, api.large)
    assert small["accepts"] and large["accepts"]
    assert 0 < small["estimated_cost_usd"] < large["estimated_cost_usd"]


@pytest.mark.parametrize(
    ("messages", "request_fields"), [(HUGE, {}), (SHORT, {"response_format": {"type": "json_object"}})]
)
def test_auto_skips_a_tier_that_does_not_accept(
    api: Api, auth: dict[str, str], messages: list[Any], request_fields: dict[str, Any]
) -> None:
    job = api.submit(auth, api.auto, messages, request=request_fields).json()
    assert job["tier"] == api.large
    assert [c["accepts"] for c in job["routing"]["candidates"]] == [False, True]


def test_auto_refuses_with_a_stable_code_when_no_tier_accepts(api: Api, auth: dict[str, str]) -> None:
    before = api.queued(api.small)
    error = assert_error(api.submit(auth, api.picky, HUGE), 400, "no_tier_accepts")
    assert error["auto_tier"] == api.picky and api.picky in error["message"]
    assert error["candidates"][0]["tier"] == api.small
    assert api.queued(api.small) == before


def test_an_auto_tier_is_not_a_tier_outside_routing(api: Api) -> None:
    admin = api.tenant({"admin"})
    error = assert_error(api.client.delete(f"/v1/cache/tiers/{api.auto}", headers=admin), 400, "unknown_tier")
    assert "auto tier" in error["message"]
    listed = api.client.get("/v1/limits", headers=admin)
    assert listed.status_code == 200, listed.text
    assert api.auto not in str(listed.json().get("tiers"))


def test_an_idempotent_retry_of_a_routed_job_replays_it(api: Api, auth: dict[str, str]) -> None:
    headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
    first = api.submit(headers, api.large, SHORT).json()
    again = api.submit(headers, api.large, SHORT)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first["id"] and again.json()["routing"] == first["routing"]


def test_a_batch_routes_each_line_and_queues_it_on_its_tier(api: Api, auth: dict[str, str]) -> None:
    jobs = [{"custom_id": "short", "messages": SHORT}, {"custom_id": "long", "messages": LONG}]
    response = api.client.post("/v1/batches", json={"tier": api.large, "jobs": jobs}, headers=auth)
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["tier"] == api.large
    rows = batch_jobs(api, auth, batch["id"])
    assert rows["short"]["tier"] == api.small and rows["long"]["tier"] == api.large
    assert rows["short"]["routing"] == {"rule": "short-to-small", "from": api.large, "to": api.small}
    assert rows["long"]["routing"] is None
    assert rows["short"]["id"] in api.queued(api.small, "batch")
    assert rows["long"]["id"] in api.queued(api.large, "batch")


def test_a_batch_routes_by_its_metadata_and_through_an_auto_tier(api: Api, auth: dict[str, str]) -> None:
    jobs = [{"custom_id": "long", "messages": LONG}]
    easy = {"tier": api.large, "jobs": jobs, "metadata": {"task": "classify"}}
    rows = batch_jobs(api, auth, api.client.post("/v1/batches", json=easy, headers=auth).json()["id"])
    assert rows["long"]["routing"]["rule"] == "easy-tasks"
    jobs = [{"custom_id": "short", "messages": SHORT}, {"custom_id": "huge", "messages": HUGE}]
    response = api.client.post("/v1/batches", json={"tier": api.auto, "jobs": jobs}, headers=auth)
    assert response.status_code == 200, response.text
    rows = batch_jobs(api, auth, response.json()["id"])
    assert (rows["short"]["tier"], rows["huge"]["tier"]) == (api.small, api.large)
    assert rows["huge"]["routing"]["rule"] == "auto"


def test_jsonl_lines_may_name_an_auto_tier_as_their_model(api: Api, auth: dict[str, str]) -> None:
    lines = [
        {
            "custom_id": name,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": api.auto, "messages": m},
        }
        for name, m in (("short", SHORT), ("huge", HUGE))
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    headers = {**auth, "Content-Type": "application/jsonl"}
    response = api.client.post("/v1/batches", content=text, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == api.auto
    rows = batch_jobs(api, auth, response.json()["id"])
    assert (rows["short"]["tier"], rows["huge"]["tier"]) == (api.small, api.large)
    assert "model" not in rows["short"]["request"]


def test_a_batch_line_no_auto_candidate_accepts_is_reported_by_number(api: Api, auth: dict[str, str]) -> None:
    jobs = [{"messages": SHORT}, {"messages": HUGE}]
    response = api.client.post("/v1/batches", json={"tier": api.picky, "jobs": jobs}, headers=auth)
    error = assert_error(response, 422, "invalid_batch_file")
    assert [(line["line"], line["code"]) for line in error["errors"]] == [(2, "no_tier_accepts")]


def test_a_keys_allowed_tiers_are_checked_against_the_tier_asked_for(api: Api) -> None:
    admin = api.tenant({"admin"})
    created = api.client.post(
        "/v1/keys", json={"scopes": ["submit"], "allowed_tiers": [api.large]}, headers=admin
    )
    assert created.status_code == 201, created.text
    user = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert api.submit(user, api.large, SHORT).json()["tier"] == api.small
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": api.large, "messages": SHORT}}  # fmt: skip
    headers = {**user, "Content-Type": "application/jsonl"}
    batch = api.client.post("/v1/batches", content=json.dumps(line), headers=headers)
    assert batch.status_code == 200, batch.text
    assert_error(api.submit(user, api.auto, SHORT), 403, "tier_not_allowed")


def test_a_known_query_is_kept_on_the_tier_it_routes_to(api: Api, auth: dict[str, str]) -> None:
    admin = api.tenant({"admin"})
    body = {"tier": api.large, "request": {"messages": SHORT}, "every_s": 3600}
    response = api.client.post("/v1/known-queries", json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["tier"] == api.small
    refused = {"tier": api.picky, "request": {"messages": HUGE}, "every_s": 3600}
    assert_error(api.client.post("/v1/known-queries", json=refused, headers=admin), 400, "no_tier_accepts")


def test_routing_that_cannot_work_stops_the_settings_from_loading(tmp_path: Any, redis_url: str) -> None:
    config = routing_config("big", "little", "pick", "fussy")
    config["tiers"]["big"]["rules"][0]["tier"] = "nowhere"
    with pytest.raises(
        ValidationError, match="tier 'big' rule 'short-to-small' names unknown tier 'nowhere'"
    ):
        make_test_settings(tmp_path, redis_url, **config)
    config = routing_config("big", "little", "big", "fussy")
    with pytest.raises(ValidationError, match="auto tier 'big' has the name of a tier"):
        make_test_settings(tmp_path, redis_url, **config)


def batch_jobs(api: Api, auth: dict[str, str], batch_id: str) -> dict[str, dict[str, Any]]:
    """The batch's jobs as the API shows them, by custom_id (line-<n> when none was given)."""
    with Session(api.engine) as session:
        found = session.exec(select(Job.id, Job.custom_id).where(col(Job.batch_id) == batch_id)).all()
    return {
        str(custom_id): api.client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        for job_id, custom_id in found
    }
