"""The kill switch gate in the policy chain: a stopped job waits without a call or an attempt,
``fail_queued`` fails it with ``kill_switch``, and a lifted switch lets it run (real Redis and DB)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chain_support import make_ctx, make_job
from kill_switch_support import lift_switch, remove_switches, set_switch
from sqlalchemy import update
from sqlmodel import col
from tests_support import completion_body, tier_runtime

from api.keys import create_key, create_tenant
from schemas.openai import ChatCompletion
from schemas.spend_errors import KillSwitchEngaged
from schemas.tables import ApiKey, Job, utcnow
from workers import job_runner, store
from workers.chain import CallContext, Route
from workers.db import session_scope
from workers.job_runner import run_job
from workers.kill_switch_board import KillSwitchBoard
from workers.middleware.kill_switch import KillSwitchGate
from workers.providers.base import ProviderResponse
from workers.runtime import Runtime

REQUEST = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}


@pytest.fixture
def runtime(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[Runtime]:
    """A runtime on a database with no kill switch (PostgreSQL's is shared by the session)."""
    tier = f"gate{uuid.uuid4().hex[:8]}"
    with tier_runtime(tmp_path, redis_url, database_url, tier, ["emu-a", "emu-b"]) as rt:
        remove_switches(rt)
        yield rt
        remove_switches(rt)


@pytest.fixture
def calls(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The jobs whose provider call was made."""
    made: list[str] = []

    def answer(rt: Runtime, ctx: CallContext) -> ProviderResponse[ChatCompletion]:
        made.append(ctx.job.id)
        return ProviderResponse(
            completion=ChatCompletion.model_validate(completion_body("emu-a", "Hi", 3, 1))
        )

    monkeypatch.setattr(job_runner, "_call_provider", answer)
    return made


def add_job(rt: Runtime, prefix: str = "gate", **fields: Any) -> Job:
    """A queued job of a new tenant, submitted with a key of it, on the tier named ``prefix...``."""
    tier = next(name for name in rt.settings.tiers if name.startswith(prefix))
    with session_scope(rt.engine) as session:
        tenant = create_tenant(session, f"t-{uuid.uuid4().hex[:8]}")
        session.flush()
        create_key(session, tenant.id, {"submit"})
        session.flush()
        key = session.query(ApiKey).filter_by(tenant_id=tenant.id).one()
        return store.insert_job(
            session,
            tenant_id=tenant.id,
            api_key_id=key.id,
            tier=tier,
            request=REQUEST,
            job_metadata={},
            **fields,
        )


def reload(rt: Runtime, job_id: str) -> Job:
    job = store.load_job(rt.engine, job_id)
    assert job is not None
    return job


def deferred_ids(rt: Runtime) -> list[str]:
    entries: list[bytes] = rt.redis.zrange(rt.keys.deferred, 0, -1)  # type: ignore[assignment]
    return [json.loads(entry)[0] for entry in entries]


@pytest.mark.parametrize("scope", ["all", "tenant", "api_key", "tier", "model", "provider"])
def test_a_stopped_job_waits_a_second_without_a_call_or_an_attempt(
    runtime: Runtime, calls: list[str], scope: str
) -> None:
    job = add_job(runtime)
    value = {"all": "", "tenant": job.tenant_id, "api_key": job.api_key_id, "tier": job.tier}
    set_switch(
        runtime, scope=scope, value=value.get(scope, {"model": "emu-a", "provider": "emulator"}.get(scope))
    )

    before = utcnow()
    run_job(runtime, job.id)

    after = reload(runtime, job.id)
    assert calls == []
    assert (after.status, after.attempts, after.attempt_log) == ("queued", 0, [])
    assert after.not_before is not None
    # One second plus up to half again of jitter (and the retry policy's 10 %).
    assert before + timedelta(seconds=1) <= after.not_before <= utcnow() + timedelta(seconds=1.65)
    assert deferred_ids(runtime) == [job.id]  # comes back by itself, soon


def test_once_lifted_the_waiting_job_runs(runtime: Runtime, calls: list[str]) -> None:
    job = add_job(runtime)
    stop = set_switch(runtime, scope="model", value="emu-a")
    run_job(runtime, job.id)
    assert reload(runtime, job.id).status == "queued"

    lift_switch(runtime, stop)
    with session_scope(runtime.engine) as session:  # its second is up: the deferred entry is due
        session.execute(update(Job).where(col(Job.id) == job.id).values(not_before=utcnow()))
    run_job(runtime, job.id)

    assert calls == [job.id]
    assert (reload(runtime, job.id).status, reload(runtime, job.id).attempts) == ("succeeded", 1)


def test_a_switch_that_fails_queued_jobs_fails_them_with_kill_switch(
    runtime: Runtime, calls: list[str]
) -> None:
    job = add_job(runtime)
    stop = set_switch(runtime, scope="tenant", value=job.tenant_id, fail_queued=True)

    run_job(runtime, job.id)

    after = reload(runtime, job.id)
    assert calls == []
    assert (after.status, after.error_code) == ("failed", "kill_switch")
    assert stop in (after.error_message or "")


def test_another_tenants_switch_does_not_stop_the_job(runtime: Runtime, calls: list[str]) -> None:
    job, other = add_job(runtime), add_job(runtime)
    set_switch(runtime, scope="all", tenant_id=other.tenant_id)

    run_job(runtime, job.id)

    assert calls == [job.id] and reload(runtime, job.id).status == "succeeded"


def test_a_call_moved_to_a_stopped_model_after_the_gate_is_stopped_too(runtime: Runtime) -> None:
    # Rate limiting may move the call to another model of the chain, after the gate has run.
    set_switch(runtime, scope="model", value="emu-b")
    gate = KillSwitchGate(KillSwitchBoard(runtime.redis, runtime.keys, runtime.engine))
    ctx = make_ctx(runtime.settings, make_job())
    ctx.route = Route("emu-a", runtime.settings.models["emu-a"])

    def call(ctx: CallContext) -> ProviderResponse[ChatCompletion]:
        raise AssertionError("not called here")

    gate.before_call(ctx)  # emu-a is not stopped
    assert gate.wrap_call(ctx, call) is call

    ctx.route = Route("emu-b", runtime.settings.models["emu-b"])
    with pytest.raises(KillSwitchEngaged):
        gate.wrap_call(ctx, call)


def test_a_stopped_job_is_not_parked_for_the_provider_batch_api_but_waits(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    # A provider batch spends later, out of the gate's reach: a stopped job stays off the lane.
    with tier_runtime(tmp_path, redis_url, database_url, f"kslane{uuid.uuid4().hex[:8]}", ["emu-lane"]) as rt:
        remove_switches(rt)
        lane_job = {"priority": "batch", "completion_window": "24h"}
        parked, held = add_job(rt, "kslane", **lane_job), add_job(rt, "kslane", **lane_job)
        set_switch(rt, scope="provider", value="emulator_batch", tenant_id=held.tenant_id)
        try:
            run_job(rt, parked.id)
            run_job(rt, held.id)
        finally:
            remove_switches(rt)

        assert reload(rt, parked.id).provider_batch_id is not None
        after = reload(rt, held.id)
        assert (after.provider_batch_id, after.status, after.attempts) == (None, "queued", 0)
        assert deferred_ids(rt) == [held.id]
