"""Crash safety: a worker killed mid-call and a publish lost after commit both end well."""

from __future__ import annotations

import time

from e2e_stack import Stack
from sqlmodel import Session, select

from api.keys import find_principal
from api.services import Services
from api.submission import submit_job
from schemas.jobs import JobCreate
from schemas.tables import Job, Usage
from workers.db import make_engine


def _wait_for_calls(e2e: Stack, model: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while e2e.emulator("GET", "/emulator/stats").get("by_model", {}).get(model, 0) < count:
        assert time.monotonic() < deadline, "the worker never called the provider"
        time.sleep(0.05)


def test_worker_killed_mid_call_is_recovered_with_one_result(e2e: Stack) -> None:
    e2e.emulator("POST", "/emulator/reset")
    e2e.emulator(
        "POST",
        "/emulator/faults",
        json={"model": "emu-slow", "latency_ms": 1500, "responses": [], "mode": "sequence"},
    )
    job = e2e.submit("slow", "survive a crash")
    _wait_for_calls(e2e, "emu-slow", 1)
    e2e.kill("worker-emu")  # kill -9 the worker and its pool mid-call
    e2e.start_emulator_worker()

    done = e2e.wait_final(job["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2, done["attempt_log"]  # the lost attempt, then one after the lease expired
    assert [entry["outcome"] for entry in done["attempt_log"]] == ["worker_lost", "ok"]
    engine = make_engine(e2e.settings)
    with Session(engine) as session:
        outcomes = session.exec(select(Usage.outcome).where(Usage.job_id == job["id"])).all()
        row = session.get(Job, job["id"])
    # The killed call never settled: it is counted as one that may have been billed, and the
    # job has exactly one final result.
    assert sorted(outcomes) == ["ok", "worker_lost"]
    assert row is not None and row.lease_token is None


def test_publish_lost_after_commit_is_repaired_by_the_reconciler(e2e: Stack) -> None:
    faulty = e2e.settings.model_copy(update={"inject_faults": {"skip_publish_after_commit"}})
    services = Services.build(faulty)
    try:
        with Session(services.engine) as session:
            principal = find_principal(session, e2e.keys["a"])
        assert principal is not None
        body = JobCreate.model_validate(
            {"tier": "small", "request": {"messages": [{"role": "user", "content": "orphan"}]}}
        )
        accepted = submit_job(services, principal, body, None)
    finally:
        services.close()
    with Session(make_engine(e2e.settings)) as session:
        row = session.get(Job, accepted.job.id)
    assert row is not None and row.status == "queued" and row.published_at is None

    done = e2e.wait_final(accepted.job.id, timeout=30)

    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
