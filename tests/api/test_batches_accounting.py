"""A batch's life at the API: it ends with its last job exactly once, is cancelled or expires
around its running jobs, takes answers from the exact cache, and runs embedding lines."""

from __future__ import annotations

from datetime import timedelta

import batches_api_support
import pytest
from api_harness import assert_error
from batches_api_support import COMPLETION, Api, jsonl
from sqlmodel import Session, col
from tests_support import delete_tier_queues, queued_job_ids

from schemas.tables import Batch, utcnow
from workers import batch_sweeps, store
from workers.cache.exact import request_key
from workers.cache.results import CachedResult

api, auth = batches_api_support.api, batches_api_support.auth  # the shared fixtures, by name


# Accounting: the batch ends with its last job, exactly once


def test_batch_completes_with_its_last_job_and_serves_output_in_order(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 3)
    jobs = api.jobs(batch["id"])
    api.run(jobs[2].id)
    api.run(jobs[0].id, succeed=False)
    middle = api.get(f"/v1/batches/{batch['id']}", auth).json()
    assert middle["status"] == "in_progress" and middle["progress"] == pytest.approx(2 / 3, abs=1e-3)
    assert middle["counts"]["succeeded"] == 1 and middle["counts"]["failed"] == 1
    assert middle["eta_s"] is not None and middle["cost_usd"] == 0.25
    api.run(jobs[1].id)
    done = api.get(f"/v1/batches/{batch['id']}", auth).json()
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert done["progress"] == 1.0 and done["eta_s"] == 0.0 and done["cost_usd"] == 0.5
    output = jsonl(api.get(f"/v1/files/{done['output_file_id']}/content", auth))
    assert [line["custom_id"] for line in output] == ["doc-1", "doc-2"]
    assert output[0]["response"] == {"status_code": 200, "request_id": jobs[1].id, "body": COMPLETION}
    assert output[0]["error"] is None and output[0]["id"].startswith("batch_req_")
    assert jsonl(api.get(f"/v1/batches/{batch['id']}/output", auth)) == output
    errors = jsonl(api.get(f"/v1/files/{done['error_file_id']}/content", auth))
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("doc-0", "provider_bad_request")]
    file = api.get(f"/v1/files/{done['output_file_id']}", auth).json()
    assert file["purpose"] == "batch_output"
    content = api.get(f"/v1/files/{done['output_file_id']}/content", auth).content
    assert file["bytes"] == len(content) > 0


def test_closing_twice_changes_nothing(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 1)
    api.run(api.jobs(batch["id"])[0].id)
    done = api.get(f"/v1/batches/{batch['id']}", auth).json()
    assert api.services.outcomes.end_batch(batch["id"]) is None
    assert api.get(f"/v1/batches/{batch['id']}", auth).json() == done


def test_cancel_cancels_queued_jobs_and_waits_for_running_ones(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 4)
    jobs = api.jobs(batch["id"])
    api.run(jobs[0].id)
    running = store.claim_job(api.engine, jobs[1].id, 60)
    assert running is not None
    cancelling = api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth)
    assert cancelling.status_code == 200, cancelling.text
    assert cancelling.json()["status"] == "cancelling" and cancelling.json()["counts"]["canceled"] == 2
    assert store.claim_job(api.engine, jobs[2].id, 60) is None  # a canceled job never runs
    final = store.finish_job(api.engine, running, status="succeeded", result=COMPLETION)
    assert final is not None
    api.services.outcomes.announce_job(final)
    done = api.get(f"/v1/batches/{batch['id']}", auth).json()
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    counts = done["counts"]
    assert (counts["succeeded"], counts["canceled"], counts["queued"], counts["running"]) == (2, 2, 0, 0)
    assert [line["custom_id"] for line in jsonl(api.get(f"/v1/batches/{batch['id']}/output", auth))] == [
        "doc-0",
        "doc-1",
    ]
    errors = jsonl(api.get(f"/v1/batches/{batch['id']}/errors", auth))
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("doc-2", "batch_cancelled"),
        ("doc-3", "batch_cancelled"),
    ]
    assert_error(
        api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth), 409, "batch_not_cancelable"
    )


def test_cancel_with_nothing_running_ends_at_once(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 2)
    done = api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth).json()
    assert done["status"] == "cancelled" and done["counts"]["canceled"] == 2


def test_reconciler_ends_a_batch_left_open(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 1)
    job = store.claim_job(api.engine, api.jobs(batch["id"])[0].id, 60)
    assert job is not None
    store.finish_job(api.engine, job, status="succeeded", result=COMPLETION)  # no announcement: a crash
    assert api.get(f"/v1/batches/{batch['id']}", auth).json()["status"] == "in_progress"
    assert batch_sweeps.repair(api.services.outcomes) >= 1
    assert api.get(f"/v1/batches/{batch['id']}", auth).json()["status"] == "completed"


# The exact cache answers lines without a queue


def test_cached_lines_finish_at_once_and_are_not_queued(api: Api, auth: dict[str, str]) -> None:
    tenant_id = _tenant_of(api, auth)
    line = api.lines(1, start=900)[0]
    request = {"messages": line["body"]["messages"]}
    key = request_key(tenant_id, api.tier, request)
    api.services.results.store(
        tenant_id, api.tier, key, CachedResult("job_src", COMPLETION, "emu-a", "emulator", 0.1), 60
    )
    before = queued_job_ids(api.redis, f"tier.{api.tier}.batch")
    response = api.post_jsonl(auth, [line], tier=api.tier)
    assert response.status_code == 200, response.text
    batch = api.get(f"/v1/batches/{response.json()['id']}", auth).json()
    assert batch["status"] == "completed" and batch["counts"]["succeeded"] == 1
    assert queued_job_ids(api.redis, f"tier.{api.tier}.batch") == before
    output = jsonl(api.get(f"/v1/batches/{batch['id']}/output", auth))
    assert output[0]["response"]["body"] == COMPLETION


def _tenant_of(api: Api, auth: dict[str, str]) -> str:
    batch = api.create(auth, 1)
    with Session(api.engine) as session:
        row = session.get(Batch, batch["id"])
        assert row is not None
        return row.tenant_id


def test_embedding_lines_become_embedding_jobs(api: Api, auth: dict[str, str]) -> None:
    line = {"method": "POST", "url": "/v1/embeddings", "body": {"model": "embed-emu", "input": ["a", "b"]}}
    lines = [{"custom_id": f"e{index}", **line} for index in range(2)]
    try:
        response = api.post_jsonl(auth, lines, endpoint="/v1/embeddings")
        assert response.status_code == 200, response.text
        batch = response.json()
        assert batch["tier"] == "embed-emu" and batch["endpoint"] == "/v1/embeddings"
        jobs = api.jobs(batch["id"])
        assert {job.kind for job in jobs} == {"embedding"} and jobs[0].request == {"input": ["a", "b"]}
        wrong = [{**lines[0], "body": {"model": api.tier, "input": "x"}}]
        error = assert_error(
            api.post_jsonl(auth, wrong, endpoint="/v1/embeddings"), 422, "invalid_batch_file"
        )
        assert error["errors"][0]["code"] == "wrong_job_kind"
    finally:
        delete_tier_queues(api.redis, ["embed-emu"], api.settings.key_prefix)


def test_a_batch_past_its_window_expires_after_its_running_jobs(api: Api, auth: dict[str, str]) -> None:
    from sqlalchemy import update

    batch = api.create(auth, 3, completion_window="24h")
    jobs = api.jobs(batch["id"])
    api.run(jobs[0].id)
    running = store.claim_job(api.engine, jobs[1].id, 60)
    assert running is not None
    with api.engine.begin() as connection:  # as if 24 h had passed
        connection.execute(
            update(Batch)
            .where(col(Batch.id) == batch["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert batch_sweeps.expire_due(api.services.outcomes) >= 1
    assert api.get(f"/v1/batches/{batch['id']}", auth).json()["status"] == "in_progress"
    assert store.claim_job(api.engine, jobs[2].id, 60) is None
    final = store.finish_job(api.engine, running, status="succeeded", result=COMPLETION)
    assert final is not None
    api.services.outcomes.announce_job(final)
    done = api.get(f"/v1/batches/{batch['id']}", auth).json()
    assert done["status"] == "expired" and done["expired_at"] is not None and done["completed_at"] is None
    assert done["request_counts"] == {"total": 3, "completed": 2, "failed": 0}
    errors = jsonl(api.get(f"/v1/files/{done['error_file_id']}/content", auth))
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [("doc-2", "batch_expired")]
    assert batch_sweeps.expire_due(api.services.outcomes) == 0
