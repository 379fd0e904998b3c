"""The provider Batch API lane recovers: a send or merge a crash interrupted is taken up again
without a second batch, an unreachable provider's jobs run live, a merge run twice settles each
job once, and a job whose lane lease expired runs live."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import provider_lane_support
import pytest
from provider_lane_support import (
    TIER,
    add_jobs,
    batches,
    claim_all,
    drive,
    emulator_batches,
    jobs,
    make_runtime,
)
from sqlalchemy import update
from sqlmodel import Session, col, select
from tests_support import EMULATOR_KEY, delete_tier_queues

from infra.launch import free_port
from schemas.tables import Job, ProviderBatch, Usage, utcnow
from workers.db import session_scope
from workers.job_runner import run_job
from workers.provider_batches import batch_store
from workers.provider_batches.client import BatchClient
from workers.provider_batches.lane import run_pass
from workers.provider_batches.lines import CHAT_ENDPOINT, encode_line, request_line
from workers.reconciler import reconcile
from workers.runtime import Runtime

# The lane fixtures (tests/provider_lane_support.py), found by pytest under these names.
emulator_url = provider_lane_support.emulator_url
postgres_url = provider_lane_support.postgres_url
rt = provider_lane_support.rt


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


def test_a_pass_never_resumes_the_send_it_just_tried(
    tmp_path: Path, redis_url: str, database_url: str, emulator_url: str
) -> None:
    # resend_after_s shorter than any send: the batch is "stale" by the time its send fails
    rt = make_runtime(
        tmp_path,
        redis_url,
        database_url,
        f"http://127.0.0.1:{free_port()}",
        max_send_attempts=2,
        resend_after_s=0.001,
    )
    try:
        claim_all(rt, add_jobs(rt, 2))
        time.sleep(0.05)  # past max_wait_s
        run_pass(rt)
        (batch,) = batches(rt)
        assert batch.status == "sending" and batch.send_attempts == 1
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
