"""The budget middleware in a real worker runtime (Redis and the test databases), the provider
faked at its boundary: reserve and settle, and what an exhausted budget does to a job."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from budget_support import add_budget, add_usage, usage_rows  # noqa: F401 (fixture)
from sqlmodel import Session, col, select
from tests_support import completion_body, delete_tier_queues, make_test_settings, queued_job_ids

from schemas.openai import ChatCompletion
from schemas.tables import Job, Usage, utcnow
from workers import job_runner, store
from workers.budgets.estimate import to_nano
from workers.budgets.terms import BudgetTerms
from workers.celery_app import create_celery
from workers.db import session_scope
from workers.job_runner import run_job
from workers.keys import tier_queue
from workers.migrate import upgrade
from workers.providers.base import ProviderResponse
from workers.ratelimit.policy import model_limits
from workers.runtime import Runtime

REQUEST = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 20}
# emu-a: $0.5 in, $1.5 out per million tokens; the answer uses 10 + 5 tokens.
ANSWER = completion_body("emu-a", "Hi there", prompt_tokens=10, completion_tokens=5)
ANSWER_COST = (10 * 0.5 + 5 * 1.5) / 1_000_000


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Runtime]:
    """A worker runtime with two tiers of its own: an expensive one (emu-b) and a cheap one (emu-a)."""
    name = f"bx{uuid.uuid4().hex[:8]}"
    tiers = {name: {"models": ["emu-b"]}, f"{name}-cheap": {"models": ["emu-a"]}}
    settings = make_test_settings(tmp_path, redis_url, database_url, tiers=tiers)
    upgrade(settings)
    rt = Runtime(settings=settings, celery=create_celery(settings))
    try:
        yield rt
    finally:
        delete_tier_queues(rt.redis, list(tiers), settings.key_prefix)
        rt.engine.dispose()
        rt.redis.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The provider calls made (model aliases); every call answers ``ANSWER``."""
    made: list[str] = []

    def call(rt: object, ctx: job_runner.CallContext) -> ProviderResponse[ChatCompletion]:
        assert ctx.route is not None
        made.append(ctx.route.alias)
        return ProviderResponse(completion=ChatCompletion.model_validate(ANSWER))

    monkeypatch.setattr(job_runner, "_call_provider", call)
    return made


def tiers(rt: Runtime) -> tuple[str, str]:
    expensive = next(
        name for name in rt.settings.tiers if name.startswith("bx") and not name.endswith("cheap")
    )
    return expensive, f"{expensive}-cheap"


def add_job(rt: Runtime, tenant: str, tier: str) -> Job:
    with session_scope(rt.engine) as session:
        return store.insert_job(session, tenant_id=tenant, tier=tier, request=REQUEST, job_metadata={})


def reload(rt: Runtime, job_id: str) -> Job:
    job = store.load_job(rt.engine, job_id)
    assert job is not None
    return job


def figures(rt: Runtime, tenant: str) -> list[tuple[int, int]]:
    terms = rt.budgets.directory.of_tenant(tenant)
    return [(f.spent.nano_usd, f.reserved.nano_usd) for f in rt.budgets.figures(terms)]


@pytest.mark.usefixtures("usage_rows")
def test_a_call_settles_its_actual_cost_and_releases_the_rest(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    _, cheap = tiers(runtime)
    add_budget(runtime.engine, runtime.settings, tenant, limit_usd=1.0, period="day")
    job = add_job(runtime, tenant, cheap)
    run_job(runtime, job.id)
    assert reload(runtime, job.id).status == "succeeded" and calls == ["emu-a"]
    assert figures(runtime, tenant) == [(to_nano(ANSWER_COST), 0)]


@pytest.mark.usefixtures("usage_rows")
def test_an_exhausted_hard_budget_fails_the_job_without_a_call(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    _, cheap = tiers(runtime)
    add_budget(runtime.engine, runtime.settings, tenant, limit_usd=0.01)
    add_usage(runtime.engine, tenant, 0.0099999, tier=cheap)  # one call's estimate no longer fits
    job = add_job(runtime, tenant, cheap)
    run_job(runtime, job.id)
    after = reload(runtime, job.id)
    assert (after.status, after.error_code) == ("failed", "budget_exceeded")
    assert calls == [] and queued_job_ids(runtime.redis, tier_queue(cheap, "live")) == []
    with Session(runtime.engine) as session:
        assert session.exec(select(Usage).where(col(Usage.job_id) == job.id)).all() == []


@pytest.mark.usefixtures("usage_rows")
def test_a_downgrade_budget_moves_the_job_to_the_cheaper_tier(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    expensive, cheap = tiers(runtime)
    budget = add_budget(
        runtime.engine,
        runtime.settings,
        tenant,
        limit_usd=0.01,
        tier=expensive,
        on_exhausted="downgrade",
        downgrade_tier=cheap,
    )
    add_usage(runtime.engine, tenant, 0.01, tier=expensive, model="emu-b")
    job = add_job(runtime, tenant, expensive)
    run_job(runtime, job.id)
    moved = reload(runtime, job.id)
    assert (moved.status, moved.tier, moved.attempts) == ("queued", cheap, 0)
    assert moved.routing == {"rule": "budget_downgrade", "from": expensive, "to": cheap, "budget": budget.id}
    assert queued_job_ids(runtime.redis, tier_queue(cheap, "live")) == [job.id]
    run_job(runtime, job.id)  # the cheap tier's worker takes it
    assert reload(runtime, job.id).status == "succeeded" and calls == ["emu-a"]


@pytest.mark.usefixtures("usage_rows")
def test_a_downgrade_to_a_tier_whose_own_budget_is_spent_fails(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    expensive, cheap = tiers(runtime)
    add_budget(
        runtime.engine,
        runtime.settings,
        tenant,
        limit_usd=0.01,
        tier=expensive,
        on_exhausted="downgrade",
        downgrade_tier=cheap,
    )
    add_budget(runtime.engine, runtime.settings, tenant, limit_usd=0.01, tier=cheap)
    add_usage(runtime.engine, tenant, 0.01, tier=expensive, model="emu-b")
    add_usage(runtime.engine, tenant, 0.01, tier=cheap)
    job = add_job(runtime, tenant, expensive)
    run_job(runtime, job.id)
    after = reload(runtime, job.id)
    assert (after.status, after.error_code, after.tier) == ("failed", "budget_exceeded", expensive)
    assert calls == []


@pytest.mark.usefixtures("usage_rows")
def test_a_wait_budget_hands_the_job_back_until_the_period_resets(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    _, cheap = tiers(runtime)
    budget = add_budget(
        runtime.engine, runtime.settings, tenant, limit_usd=0.01, period="day", on_exhausted="wait"
    )
    add_usage(runtime.engine, tenant, 0.01, tier=cheap)
    job = add_job(runtime, tenant, cheap)
    run_job(runtime, job.id)
    after = reload(runtime, job.id)
    assert (after.status, after.attempts, after.published_at) == ("queued", 0, None)  # the row waits
    resets = BudgetTerms.of(budget, "UTC").period_at(utcnow()).end
    assert after.not_before is not None
    assert timedelta(0) <= after.not_before - resets <= timedelta(seconds=61)
    assert calls == []


@pytest.mark.usefixtures("usage_rows")
def test_crossing_a_threshold_announces_it_on_the_event_stream_once(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    _, cheap = tiers(runtime)
    budget = add_budget(runtime.engine, runtime.settings, tenant, limit_usd=0.0001, thresholds=[0.1])
    for _ in range(2):  # each call costs 12.5 % of the limit: both are past 10 %
        run_job(runtime, add_job(runtime, tenant, cheap).id)
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]], runtime.redis.xrange(runtime.keys.tenant_events(tenant))
    )
    events = [json.loads(fields[b"event"]) for _, fields in entries if fields[b"type"] == b"budget.threshold"]
    assert len(events) == 1
    assert events[0]["data"]["budget"]["id"] == budget.id and events[0]["data"]["threshold"] == 0.1


@pytest.mark.usefixtures("usage_rows")
def test_a_refused_call_gives_its_rate_limit_tokens_back(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    settings = make_test_settings(
        Path(runtime.settings.var_dir),
        runtime.settings.redis_url,
        runtime.settings.database_url,
        key_prefix=runtime.settings.key_prefix,
        tiers={"budget-rl": {"models": ["emu-rl"]}},
    )
    limited = Runtime(settings=settings, celery=runtime.celery)
    add_budget(limited.engine, settings, tenant, limit_usd=0.01)
    add_usage(limited.engine, tenant, 0.01, tier="budget-rl", model="emu-rl")
    job = add_job(limited, tenant, "budget-rl")
    try:
        run_job(limited, job.id)
        assert reload(limited, job.id).error_code == "budget_exceeded"
        model = settings.models["emu-rl"]
        state = limited.limiter.snapshot(model.bucket, model_limits(model, settings.rate_limits))
        assert (state.requests_used, state.tokens_used, state.in_flight) == (1, 0, 0)
    finally:
        delete_tier_queues(limited.redis, ["budget-rl"], settings.key_prefix)
        limited.engine.dispose()


@pytest.mark.usefixtures("usage_rows")
def test_a_downgrade_to_a_tier_of_another_kind_fails_instead(
    runtime: Runtime, tenant: str, calls: list[str]
) -> None:
    _, cheap = tiers(runtime)
    # A tenant-wide budget names one downgrade tier for every tier: here an embedding tier.
    add_budget(
        runtime.engine,
        runtime.settings,
        tenant,
        limit_usd=0.01,
        on_exhausted="downgrade",
        downgrade_tier="embed-emu",
    )
    add_usage(runtime.engine, tenant, 0.0099999, tier=cheap)  # not spent, but no room for a call
    job = add_job(runtime, tenant, cheap)
    run_job(runtime, job.id)
    after = reload(runtime, job.id)
    assert (after.status, after.error_code, after.tier) == ("failed", "budget_exceeded", cheap)
    assert calls == []
