"""Shadow checks of semantic hits through the worker chain: real emulator, Redis, MiniLM and
database. The emulator answers each question with its own text, so a paraphrase's real
answer differs from the cached one, and the same question's is the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from redis import Redis
from sqlalchemy import delete
from sqlmodel import col
from structlog.testing import LogCapture
from tests_support import queued_job_ids, running_emulator, tier_runtime

from api.keys import create_tenant
from infra.launch import free_port
from schemas.openai import ChatRequest
from schemas.tables import Job, Usage
from workers import store
from workers.cache import verification
from workers.cache.exact import request_key
from workers.cache.namespaces import namespace
from workers.cache.results import ResultCache
from workers.chain import CallContext
from workers.db import session_scope
from workers.job_runner import run_job
from workers.keys import tier_queue
from workers.middleware import cache_verification
from workers.middleware.cache_verification import ShadowVerification
from workers.runtime import Runtime

STORED = "How do I reset my password?"
PARAPHRASE = "What's the way to reset my password?"
# One check is enough evidence here, and any disagreement is above the ceiling.
EAGER = {
    "semantic_threshold": 0.85,
    "shadow_share": 1.0,
    "min_verified": 1,
    "false_hit_ceiling": 0.0,
    "threshold_step": 0.03,
}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as url:
        yield url


def runtime_with(tmp: Path, redis_url: str, database_url: str, emulator: str, **cache: Any) -> Any:
    tier = f"shadow{uuid.uuid4().hex[:8]}"
    providers = {"emulator": {"base_url": f"{emulator}/v1"}}
    return tier_runtime(tmp, redis_url, database_url, tier, ["emu-a"], providers=providers, cache=cache)


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, database_url: str, emulator: str) -> Iterator[Runtime]:
    with runtime_with(tmp_path, redis_url, database_url, emulator, **EAGER) as runtime:
        yield runtime


@pytest.fixture
def tenant(rt: Runtime) -> Iterator[str]:
    """A fresh tenant; its jobs and their usage rows are removed afterwards, so no sweep of
    another test finds them (a shadow left queued, say)."""
    with session_scope(rt.engine) as session:
        tenant_id = create_tenant(session, f"t-{uuid.uuid4().hex[:8]}").id
    yield tenant_id
    with session_scope(rt.engine) as session:
        session.execute(delete(Usage).where(col(Usage.tenant_id) == tenant_id))
        session.execute(delete(Job).where(col(Job.tenant_id) == tenant_id))


@pytest.fixture
def raised_events(monkeypatch: pytest.MonkeyPatch) -> list[MutableMapping[str, Any]]:
    capture = LogCapture()
    monkeypatch.setattr(verification, "log", structlog.wrap_logger(None, processors=[capture]))
    return capture.entries


def tier_of(rt: Runtime) -> str:
    """The test's own tier (the config's tiers are there too)."""
    return next(name for name in rt.settings.tiers if name.startswith("shadow"))


def ask(rt: Runtime, tenant: str, text: str) -> Job:
    """A semantic-mode job for ``text``, as the API inserts it, run once by the worker."""
    request = {"messages": [{"role": "user", "content": text}], "max_tokens": 32}
    cache = {"mode": "semantic", "ttl_s": 600, "key": request_key(tenant, tier_of(rt), request), "hit": None}
    with session_scope(rt.engine) as session:
        job = store.insert_job(
            session,
            tenant_id=tenant,
            tier=tier_of(rt),
            cache_mode="semantic",
            cache=cache,
            request=request,
            job_metadata={},
        )
    return run(rt, job.id)


def run(rt: Runtime, job_id: str) -> Job:
    run_job(rt, job_id)
    job = store.load_job(rt.engine, job_id)
    assert job is not None
    return job


def shadows(rt: Runtime) -> list[str]:
    return queued_job_ids(rt.redis, tier_queue(tier_of(rt), "precompute"))


def test_a_shadow_answering_differently_records_a_disagreement_and_raises_the_threshold(
    rt: Runtime, tenant: str, raised_events: list[MutableMapping[str, Any]]
) -> None:
    first = ask(rt, tenant, STORED)
    hit = ask(rt, tenant, PARAPHRASE)
    assert hit.cache is not None and hit.cache["hit"] == "semantic" and hit.cost_usd == 0
    ns = hit.cache["entry"]["namespace"]
    assert ns == namespace(tenant, tier_of(rt), hit.request) and hit.cache["source_job"] == first.id

    [shadow_id] = shadows(rt)
    shadow = run(rt, shadow_id)

    assert (shadow.status, shadow.priority, shadow.cache_mode) == ("succeeded", "precompute", "off")
    assert shadow.job_metadata == {"shadow_of": hit.id} and shadow.callback_url is None
    assert shadow.request == hit.request and shadow.tenant_id == tenant and shadow.cost_usd > 0
    [row] = rt.results.verification.namespaces(tenant)[tier_of(rt)]
    assert (row["verified"], row["disagreed"], row["estimated_false_hit_rate"]) == (1, 1, 1.0)
    assert row["threshold"] == pytest.approx(0.88) and row["namespace"] == ns.rsplit(":", 1)[-1]
    assert (row["verified_at_threshold"], row["disagreed_at_threshold"]) == (0, 0)  # fresh evidence next
    [raised] = [e for e in raised_events if e["event"] == "semantic_threshold_raised"]
    assert (raised["namespace"], raised["old"], raised["new"], raised["estimate"]) == (ns, 0.85, 0.88, 1.0)
    # The shadow stored nothing: the namespace still holds the first answer alone.
    assert rt.redis.llen(rt.keys.semantic_log(ns)) == 1
    semantic = rt.results.report(tenant)["tiers"][tier_of(rt)]["semantic"]
    assert (semantic["verified"], semantic["disagreed"], semantic["estimated_false_hit_rate"]) == (1, 1, 1.0)


def test_a_shadow_answering_alike_is_agreed_and_leaves_the_threshold(
    rt: Runtime, tenant: str, raised_events: list[MutableMapping[str, Any]]
) -> None:
    ask(rt, tenant, STORED)
    hit = ask(rt, tenant, STORED)  # the worker's lookup: the same question, the same answer
    assert hit.cache is not None and hit.cache["hit"] == "semantic"

    [shadow_id] = shadows(rt)
    run(rt, shadow_id)

    [row] = rt.results.verification.namespaces(tenant)[tier_of(rt)]
    assert (row["verified"], row["disagreed"], row["threshold"]) == (1, 0, 0.85)
    assert not [e for e in raised_events if e["event"] == "semantic_threshold_raised"]


def test_a_shadow_counts_once_and_a_job_claiming_to_be_one_counts_nothing(rt: Runtime, tenant: str) -> None:
    ask(rt, tenant, STORED)
    hit = ask(rt, tenant, PARAPHRASE)
    [shadow_id] = shadows(rt)
    run(rt, shadow_id)
    with session_scope(rt.engine) as session:  # a tenant's own job naming the hit in its metadata
        forged = store.insert_job(
            session,
            tenant_id=tenant,
            tier=tier_of(rt),
            cache_mode="off",
            request=hit.request,
            job_metadata={"shadow_of": hit.id},
        )

    assert run(rt, forged.id).status == "succeeded"

    [row] = rt.results.verification.namespaces(tenant)[tier_of(rt)]
    assert row["verified"] == 1


def test_no_shadow_runs_with_a_share_of_zero(
    tmp_path: Path, redis_url: str, database_url: str, emulator: str, tenant: str
) -> None:
    with runtime_with(tmp_path, redis_url, database_url, emulator, shadow_share=0.0) as runtime:
        ask(runtime, tenant, STORED)

        hit = ask(runtime, tenant, PARAPHRASE)

        assert hit.cache is not None and hit.cache["hit"] == "semantic"
        assert shadows(runtime) == []


def test_a_check_that_meets_no_redis_is_logged_and_dropped_not_raised(
    rt: Runtime, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(rt, tenant, STORED)
    hit = ask(rt, tenant, PARAPHRASE)
    capture = LogCapture()
    monkeypatch.setattr(cache_verification, "log", structlog.wrap_logger(None, processors=[capture]))
    dead = Redis(port=free_port(), socket_connect_timeout=0.2)
    middleware = ShadowVerification(rt.engine, rt.dispatcher, ResultCache(dead, rt.keys))
    ctx = CallContext(job=hit, settings=rt.settings, request=ChatRequest.model_validate(hit.request))
    ctx.answered = {"cache": hit.cache}

    middleware.after_attempt(ctx, settled=True)  # the slot release and the rest still run after it

    [failed] = [e for e in capture.entries if e["event"] == "semantic_check_failed"]
    assert failed["job"] == hit.id and failed["error_type"] == "ConnectionError"
