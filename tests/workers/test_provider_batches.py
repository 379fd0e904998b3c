"""The provider Batch API lane against the served emulator, on SQLite and on PostgreSQL:
which jobs are parked, sending, merging at the batch price through the chain's policies,
line errors, and failure and expiry fallback."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import provider_lane_support
import pytest
from chain_support import Recorder
from chain_support import call_log_lines as call_log_lines  # fixture
from provider_lane_support import (
    BATCH_PRICES,
    LIVE_PRICES,
    TIER,
    add_jobs,
    batches,
    claim_all,
    cost,
    drive,
    emulator_batches,
    jobs,
    make_runtime,
)
from sqlmodel import Session, col, select
from tests_support import delete_tier_queues

from schemas.tables import Usage, utcnow
from workers.job_runner import run_job
from workers.middleware.provider_batch import lane_route
from workers.provider_batches.lane import run_pass
from workers.provider_batches.lines import encode_line, request_line
from workers.ratelimit.limiter import BucketLimits
from workers.ratelimit.policy import tenant_running_bucket
from workers.reconciler import reconcile
from workers.runtime import Runtime

# The lane fixtures (tests/provider_lane_support.py), found by pytest under these names.
emulator_url = provider_lane_support.emulator_url
postgres_url = provider_lane_support.postgres_url
rt = provider_lane_support.rt


def test_eligible_jobs_wait_in_one_open_batch_under_a_lease_past_the_window(rt: Runtime) -> None:
    job_ids = add_jobs(rt, 3)
    claim_all(rt, job_ids)
    (batch,) = batches(rt)
    assert batch.status == "open" and batch.lines == 3 and batch.model == "emu-lane"
    lines = [encode_line(request_line(job, rt.settings.models["emu-lane"], 32)) for job in jobs(rt, job_ids)]
    assert batch.bytes == sum(len(line) for line in lines)
    for job in jobs(rt, job_ids):
        assert job.status == "running" and job.provider_batch_id == batch.id and job.lease_token == batch.id
        assert job.lease_expires_at is not None
        assert job.lease_expires_at - utcnow() > timedelta(hours=25) and job.attempts == 1
    assert reconcile(rt).requeued == 0  # the reconciler leaves them alone


@pytest.mark.parametrize(
    "fields", [{"priority": "live"}, {"completion_window": None}, {"kind": "embedding"}], ids=str
)
def test_other_jobs_are_not_parked(rt: Runtime, fields: dict[str, Any]) -> None:
    (job_id,) = add_jobs(rt, 1, **fields)
    job = jobs(rt, [job_id])[0]
    assert lane_route(rt.settings, job) is None


def test_a_full_batch_is_sent_at_once_and_the_next_job_opens_another(
    tmp_path: Path, redis_url: str, database_url: str, emulator_url: str
) -> None:
    httpx.post(f"{emulator_url}/emulator/reset")
    rt = make_runtime(tmp_path, redis_url, database_url, emulator_url, max_lines=2, max_wait_s=3600)
    try:
        claim_all(rt, add_jobs(rt, 3))
        assert [batch.lines for batch in batches(rt)] == [2, 1]
        assert run_pass(rt).sent == 1  # the full one; the other is too young
        full, young = batches(rt)
        assert full.remote_id is not None and full.status in ("submitted", "done")
        assert young.status == "open" and young.remote_id is None
    finally:
        delete_tier_queues(rt.redis, [TIER], rt.settings.key_prefix)
        rt.engine.dispose()


def test_one_submission_merges_every_answer_back_at_the_batch_price(rt: Runtime, emulator_url: str) -> None:
    key = uuid.uuid4().hex
    job_ids = add_jobs(rt, 2) + add_jobs(rt, 1, cache={"mode": "exact", "ttl_s": 60, "key": key, "hit": None})
    claim_all(rt, job_ids)
    assert drive(rt).sent == 1
    assert emulator_batches(emulator_url)["created"] == 1
    assert httpx.get(f"{emulator_url}/emulator/stats").json()["requests"] == 0  # no live chat calls
    for job in jobs(rt, job_ids):
        assert job.status == "succeeded" and job.model == "emu-lane" and job.provider == "emulator_batch"
        assert (
            job.result is not None and "Summarise document" in job.result["choices"][0]["message"]["content"]
        )
        assert job.prompt_tokens > 0 and job.completion_tokens > 0
        assert abs(job.cost_usd - cost(job, BATCH_PRICES)) < 1e-12 and job.cost_usd < cost(job, LIVE_PRICES)
        (entry,) = job.attempt_log
        assert entry["outcome"] == "ok" and entry["lane"] == "provider_batch" and job.attempts == 1
        assert job.lease_token is None and job.finished_at is not None
    with Session(rt.engine) as session:
        usage = session.exec(select(Usage).where(col(Usage.job_id).in_(job_ids))).all()
    assert sorted(row.job_id for row in usage) == sorted(job_ids)
    assert batches(rt)[0].status == "done" and batches(rt)[0].remote_status == "completed"
    cached_job = jobs(rt, job_ids)[2]  # the exact cache took the answer, at the batch price
    hit = rt.results.exact.get(cached_job.tenant_id, TIER, key)
    assert hit is not None and hit["result"] == cached_job.result and hit["cost_usd"] == cached_job.cost_usd


def test_line_errors_fail_permanent_ones_and_send_retryable_ones_live(rt: Runtime, emulator_url: str) -> None:
    refused, overloaded, fine = add_jobs(rt, 3)
    httpx.post(f"{emulator_url}/emulator/batches", json={"line_errors": {refused: 400, overloaded: 500}})
    claim_all(rt, [refused, overloaded, fine])
    drive(rt)
    failed, retried, done = jobs(rt, [refused, overloaded, fine])
    assert failed.status == "failed" and failed.error_code == "provider_bad_request"
    assert done.status == "succeeded"
    assert retried.status == "queued" and retried.attempt_log[-1]["outcome"] == "provider_unavailable"
    # Published for a live run: the row is marked only after the message went out. (The queue
    # itself is not inspected: the e2e stack's worker, alive in the same suite on the same Redis
    # database, consumes this tier's queues and drops ids it does not know.)
    assert retried.published_at is not None
    run_job(rt, retried.id)
    (live,) = jobs(rt, [retried.id])
    assert live.status == "succeeded" and live.attempts == 2 and live.lease_token is None
    assert [entry.get("lane") for entry in live.attempt_log] == ["provider_batch", None]
    assert abs(live.cost_usd - cost(live, LIVE_PRICES)) < 1e-12  # it ran live, at the live price


def test_a_failed_provider_batch_sends_every_job_back_to_run_live(rt: Runtime, emulator_url: str) -> None:
    httpx.post(f"{emulator_url}/emulator/batches", json={"outcomes": ["fail"]})
    job_ids = add_jobs(rt, 2)
    claim_all(rt, job_ids)
    drive(rt)
    for job in jobs(rt, job_ids):
        assert job.status == "queued" and job.attempt_log[-1]["outcome"] == "provider_batch_failed"
    claim_all(rt, job_ids)  # not parked again: they run live now
    assert [job.status for job in jobs(rt, job_ids)] == ["succeeded", "succeeded"]
    assert emulator_batches(emulator_url)["created"] == 1


def test_an_expired_batch_keeps_its_finished_lines_and_the_rest_run_live(
    rt: Runtime, emulator_url: str
) -> None:
    httpx.post(f"{emulator_url}/emulator/batches", json={"outcomes": ["expire"], "expire_after_lines": 1})
    first, second = add_jobs(rt, 2)
    claim_all(rt, [first, second])
    drive(rt)
    answered, leftover = jobs(rt, [first, second])
    assert answered.status == "succeeded" and abs(answered.cost_usd - cost(answered, BATCH_PRICES)) < 1e-12
    assert leftover.status == "queued" and leftover.attempt_log[-1]["outcome"] == "provider_batch_expired"


def test_a_provider_whose_adapter_speaks_no_batch_api_is_not_eligible(rt: Runtime) -> None:
    (job_id,) = add_jobs(rt, 1)
    (job,) = jobs(rt, [job_id])
    assert lane_route(rt.settings, job) is not None
    local = rt.settings.providers["emulator_batch"].model_copy(update={"kind": "local"})
    settings = rt.settings.model_copy(
        update={"providers": {**rt.settings.providers, "emulator_batch": local}}
    )
    assert lane_route(settings, job) is None


def test_a_parked_job_holds_no_running_slot_and_leaves_its_tenants_backlog(rt: Runtime) -> None:
    (job_id,) = add_jobs(rt, 1)
    (job,) = jobs(rt, [job_id])
    rt.redis.hset(rt.keys.tenant_backlog(TIER), job.tenant_id, 1)
    run_job(rt, job_id)
    (parked,) = jobs(rt, [job_id])
    assert parked.provider_batch_id is not None and parked.status == "running"
    assert int(rt.redis.hget(rt.keys.tenant_backlog(TIER), job.tenant_id) or 0) == 0
    slots = rt.limiter.snapshot(tenant_running_bucket(job.tenant_id), BucketLimits(60, concurrency=10))
    assert slots.in_flight == 0


def test_every_line_of_a_merged_batch_goes_through_the_chains_policies(
    rt: Runtime, emulator_url: str, call_log_lines: list[MutableMapping[str, Any]]
) -> None:
    journal: list[str] = []
    rt.chain.middleware.append(Recorder("later_policy", journal))  # a policy added later
    refused, fine = add_jobs(rt, 2)
    httpx.post(f"{emulator_url}/emulator/batches", json={"line_errors": {refused: 400}})
    claim_all(rt, [refused, fine])
    assert journal == []  # parked before any policy around the call ran
    drive(rt)
    assert sorted(journal) == ["later_policy.after", "later_policy.on_error"]
    calls = [line for line in call_log_lines if line["event"] == "provider_call"]
    assert sorted((line["job"], line["outcome"]) for line in calls) == sorted(
        [(refused, "provider_bad_request"), (fine, "ok")]
    )
    assert all(line["lane"] == "provider_batch" and line["provider_batch"] for line in calls)
    (done,) = jobs(rt, [fine])
    (ok_line,) = [line for line in calls if line["job"] == fine]
    assert (
        ok_line["cost_usd"] == round(done.cost_usd, 8)
        and abs(done.cost_usd - cost(done, BATCH_PRICES)) < 1e-12
    )
