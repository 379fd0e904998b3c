"""The provider Batch API lane against the served emulator, on SQLite and on PostgreSQL:
grouping, sending, merging at the batch price, line errors, failure and expiry fallback,
and a crash between batches.create and recording its id."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from tests_support import (
    EMULATOR_KEY,
    delete_tier_queues,
    fresh_postgres_database,
    make_test_settings,
    new_tenant_key,
)

from infra.launch import free_port, wait_http
from schemas.tables import Job, ProviderBatch, Usage, utcnow
from workers import store
from workers.celery_app import create_celery
from workers.db import session_scope
from workers.job_runner import run_job
from workers.migrate import upgrade
from workers.provider_batches import batch_store
from workers.provider_batches.client import BatchClient
from workers.middleware.provider_batch import lane_route
from workers.provider_batches.lane import LanePass, run_pass
from workers.provider_batches.lines import CHAT_ENDPOINT, encode_line, request_line
from workers.reconciler import reconcile
from workers.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
TIER = "provider_lane"
LIVE_PRICES = (1.0, 2.0)  # emu-lane in tests/switchyard-test.toml
BATCH_PRICES = (0.5, 1.0)


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """A served emulator whose batches complete at once."""
    port = free_port()
    command = [sys.executable, "-m", "infra.emulator", "--port", str(port), "--batch-delay-s", "0"]
    process = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/emulator/stats")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test: a pass must see only this test's batches."""
    with fresh_postgres_database("switchyard_lane") as url:
        yield url


def make_runtime(tmp_path: Path, redis_url: str, database_url: str, base_url: str, **lane: Any) -> Runtime:
    settings = make_test_settings(
        tmp_path,
        redis_url,
        database_url,
        providers={"emulator_batch": {"base_url": f"{base_url}/v1"}},
        provider_batches={"max_wait_s": 0.01, "resend_after_s": 0.2, **lane},
        backoff_base_s=0.01,
    )
    upgrade(settings)
    return Runtime(settings=settings, celery=create_celery(settings))


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, database_url: str, emulator_url: str) -> Iterator[Runtime]:
    httpx.post(f"{emulator_url}/emulator/reset")
    runtime = make_runtime(tmp_path, redis_url, database_url, emulator_url)
    yield runtime
    delete_tier_queues(runtime.redis, [TIER], runtime.settings.key_prefix)
    runtime.engine.dispose()


def add_jobs(rt: Runtime, count: int, **fields: Any) -> list[str]:
    tenant_id, _ = new_tenant_key(rt.engine)
    values = {"priority": "batch", "completion_window": "24h", **fields}
    with session_scope(rt.engine) as session:
        return [
            store.insert_job(
                session,
                tenant_id=tenant_id,
                tier=TIER,
                request={"messages": [{"role": "user", "content": f"Summarise document {n}"}]},
                job_metadata={},
                **values,
            ).id
            for n in range(count)
        ]


def claim_all(rt: Runtime, job_ids: list[str]) -> None:
    for job_id in job_ids:
        run_job(rt, job_id)


def jobs(rt: Runtime, job_ids: list[str]) -> list[Job]:
    with Session(rt.engine) as session:
        found = {job.id: job for job in session.exec(select(Job).where(col(Job.id).in_(job_ids)))}
    return [found[job_id] for job_id in job_ids]


def batches(rt: Runtime) -> list[ProviderBatch]:
    with Session(rt.engine) as session:
        return list(session.exec(select(ProviderBatch).order_by(col(ProviderBatch.created_at))))


def emulator_batches(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/emulator/batches").json())


def drive(rt: Runtime, merges: int = 1) -> LanePass:
    """Run lane passes, as beat does, until ``merges`` batches were merged; the totals."""
    total, deadline = LanePass(), time.monotonic() + 15
    while total.merged < merges and time.monotonic() < deadline:
        one = run_pass(rt)
        total.sent, total.merged = total.sent + one.sent, total.merged + one.merged
        time.sleep(0.02)
    assert total.merged == merges
    return total


def cost(job: Job, prices: tuple[float, float]) -> float:
    return (job.prompt_tokens * prices[0] + job.completion_tokens * prices[1]) / 1e6


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


@pytest.fixture
def slow_resume_rt(tmp_path: Path, redis_url: str, database_url: str, emulator_url: str) -> Iterator[Runtime]:
    """A lane that takes up an unfinished send only after 1.5 s."""
    httpx.post(f"{emulator_url}/emulator/reset")
    runtime = make_runtime(tmp_path, redis_url, database_url, emulator_url, resend_after_s=1.5)
    yield runtime
    delete_tier_queues(runtime.redis, [TIER], runtime.settings.key_prefix)
    runtime.engine.dispose()


def test_a_crash_after_batches_create_adopts_the_provider_batch_instead_of_a_second(
    slow_resume_rt: Runtime, emulator_url: str
) -> None:
    rt = slow_resume_rt
    job_ids = add_jobs(rt, 2)
    claim_all(rt, job_ids)
    (batch,) = batches(rt)
    # A worker took the batch, uploaded and created it, then died before recording the id.
    taken = batch_store.take(rt.engine, batch.id, "open", "sending", send_attempts=1)
    assert taken is not None
    client = BatchClient(rt.settings.providers["emulator_batch"])
    model = rt.settings.models["emu-lane"]
    data = b"".join(encode_line(request_line(job, model, 32)) for job in jobs(rt, job_ids))
    remote = client.create(client.upload("crash.jsonl", data), CHAT_ENDPOINT, batch.id)
    client.close()
    assert run_pass(rt).sent == 0  # too recent to be taken for dead yet
    time.sleep(1.6)  # resend_after_s
    assert drive(rt).sent == 1
    (resumed,) = batches(rt)
    assert resumed.remote_id == remote.id and resumed.send_attempts == 2
    assert emulator_batches(emulator_url)["created"] == 1
    assert [job.status for job in jobs(rt, job_ids)] == ["succeeded", "succeeded"]


def test_a_crash_after_the_upload_reuses_the_recorded_file(
    slow_resume_rt: Runtime, emulator_url: str
) -> None:
    rt = slow_resume_rt
    job_ids = add_jobs(rt, 2)
    claim_all(rt, job_ids)
    (batch,) = batches(rt)
    # A worker took the batch and uploaded its file, then died before batches.create.
    batch_store.take(rt.engine, batch.id, "open", "sending", send_attempts=1)
    client = BatchClient(rt.settings.providers["emulator_batch"])
    model = rt.settings.models["emu-lane"]
    file_id = client.upload(
        "crash.jsonl", b"".join(encode_line(request_line(j, model, 32)) for j in jobs(rt, job_ids))
    )
    client.close()
    batch_store.take(rt.engine, batch.id, "sending", "sending", input_file_id=file_id)
    time.sleep(1.6)  # resend_after_s
    assert drive(rt).sent == 1
    (resumed,) = batches(rt)
    assert resumed.input_file_id == file_id and resumed.remote_id is not None
    remote = httpx.get(f"{emulator_url}/v1/batches/{resumed.remote_id}", headers=EMULATOR_KEY).json()
    assert remote["input_file_id"] == file_id and emulator_batches(emulator_url)["created"] == 1
    assert [job.status for job in jobs(rt, job_ids)] == ["succeeded", "succeeded"]


def test_an_unreachable_provider_is_retried_then_its_jobs_run_live(
    tmp_path: Path, redis_url: str, database_url: str, emulator_url: str
) -> None:
    rt = make_runtime(
        tmp_path, redis_url, database_url, f"http://127.0.0.1:{free_port()}", max_send_attempts=2
    )
    try:
        job_ids = add_jobs(rt, 2)
        claim_all(rt, job_ids)
        time.sleep(0.05)  # past max_wait_s, so the pass sends the batch (the jobs may join in < 10 ms)
        assert run_pass(rt).sent == 0
        (batch,) = batches(rt)
        assert batch.status == "sending" and batch.send_attempts == 1 and batch.error_message
        time.sleep(0.3)
        run_pass(rt)  # the second and last try
        (batch,) = batches(rt)
        assert batch.status == "done" and batch.send_attempts == 2
        for job in jobs(rt, job_ids):
            assert (
                job.status == "queued"
                and job.attempt_log[-1]["outcome"] == "provider_batch_provider_connection_error"
            )
    finally:
        delete_tier_queues(rt.redis, [TIER], rt.settings.key_prefix)
        rt.engine.dispose()


def test_a_merge_run_twice_settles_each_job_once(rt: Runtime) -> None:
    job_ids = add_jobs(rt, 2)
    claim_all(rt, job_ids)
    drive(rt)
    (batch,) = batches(rt)
    with session_scope(rt.engine) as session:  # as if the merge crashed before marking it done
        session.execute(
            update(ProviderBatch)
            .where(col(ProviderBatch.id) == batch.id)
            .values(status="merging", updated_at=utcnow() - timedelta(seconds=5))
        )
    drive(rt)
    with Session(rt.engine) as session:
        usage = session.exec(select(Usage).where(col(Usage.job_id).in_(job_ids))).all()
    assert len(usage) == 2
    assert all(len(job.attempt_log) == 1 for job in jobs(rt, job_ids))


def test_a_job_whose_lane_lease_expired_is_requeued_and_runs_live(rt: Runtime) -> None:
    (job_id,) = add_jobs(rt, 1)
    run_job(rt, job_id)
    with session_scope(rt.engine) as session:
        session.execute(
            update(Job).where(col(Job.id) == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert reconcile(rt).requeued == 1
    run_job(rt, job_id)
    (job,) = jobs(rt, [job_id])
    assert job.status == "succeeded" and job.attempt_log[-1].get("lane") is None
    assert run_pass(rt).sent == 0  # the batch has no member left to send
    assert batches(rt)[0].status == "done"
