"""The Files and Batches API in process, on SQLite and PostgreSQL; no worker runs, so a test
that needs jobs to end claims and finishes them through the job store, as a worker does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from sqlmodel import Session, col, select
from tests_support import completion_body, database_url_for, delete_tier_queues, queued_job_ids

from schemas.tables import Batch, Job, utcnow
from workers import batch_sweeps, store
from workers.cache.exact import request_key
from workers.cache.results import CachedResult

JSONL = {"Content-Type": "application/jsonl"}
ALIAS = "other-tier-model"  # an alias of emu-b that only the other tier serves
TIERS = {"tier": ["emu-a", "emu-b"], "other_tier": [ALIAS]}
COMPLETION = completion_body("emu-a", "done", prompt_tokens=3, completion_tokens=1)


class Api(ApiHarness):
    """The Files and Batches API, with helpers to post batches and run their jobs."""

    def tenant(self, scopes: set[str] | None = None) -> dict[str, str]:
        return super().tenant(scopes or {"submit", "read"})

    def lines(self, count: int, model: str | None = None, start: int = 0) -> list[dict[str, Any]]:
        """Batch input lines asking the tier (by name unless ``model`` says otherwise)."""
        return [
            {
                "custom_id": f"doc-{index}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": model or self.tier,
                    "messages": [{"role": "user", "content": f"Doc {index}"}],
                },
            }
            for index in range(start, start + count)
        ]

    def post_jsonl(self, auth: dict[str, str], lines: list[Any] | str, **params: Any) -> Any:
        text = lines if isinstance(lines, str) else "\n".join(json.dumps(line) for line in lines)
        return self.client.post("/v1/batches", content=text, params=params, headers={**auth, **JSONL})

    def create(self, auth: dict[str, str], count: int = 3, **params: Any) -> dict[str, Any]:
        response = self.post_jsonl(auth, self.lines(count), tier=self.tier, **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def jobs(self, batch_id: str) -> list[Job]:
        with Session(self.engine) as session:
            query = select(Job).where(col(Job.batch_id) == batch_id).order_by(col(Job.batch_line))
            return list(session.exec(query))

    def run(self, job_id: str, succeed: bool = True) -> None:
        """Claim and finish a job as a worker does, announcing its outcome."""
        job = store.claim_job(self.engine, job_id, 60)
        assert job is not None
        if succeed:
            final = store.finish_job(self.engine, job, status="succeeded", result=COMPLETION, cost_usd=0.25)
        else:
            final = store.fail_job(self.engine, job, "provider_bad_request", "The provider refused it.")
        assert final is not None
        self.services.outcomes.announce_job(final)

    def get(self, path: str, auth: dict[str, str], **params: Any) -> Any:
        return self.client.get(path, headers=auth, params=params)


@contextmanager
def batches_api(tmp: Path, redis_url: str, database_url: str, **overrides: Any) -> Iterator[Api]:
    """The API on two fresh tiers: one on emu-a and emu-b, the other on an alias of emu-b."""
    models = {ALIAS: {"provider": "emulator", "model": "emu-b"}}
    with open_api(Api, tmp, redis_url, database_url, TIERS, models=models, **overrides) as api:
        yield api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("batches")
    with batches_api(tmp, redis_url, database_url_for(request, tmp)) as opened:
        yield opened


@pytest.fixture
def auth(api: Api) -> dict[str, str]:
    return api.tenant()


def jsonl(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


# Creating a batch: the three forms


def test_jsonl_upload_queues_one_batch_job_per_line_in_order(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 4, **{"metadata.project": "q3", "callback_url": "https://example.com/hook"})
    assert batch["object"] == "batch" and batch["id"].startswith("batch_")
    assert batch["status"] == "in_progress" and batch["tier"] == api.tier
    assert batch["request_counts"] == {"total": 4, "completed": 0, "failed": 0}
    assert batch["counts"]["queued"] == 4 and batch["progress"] == 0.0
    assert batch["metadata"] == {"project": "q3"} and batch["callback_url"] == "https://example.com/hook"
    jobs = api.jobs(batch["id"])
    assert [job.custom_id for job in jobs] == ["doc-0", "doc-1", "doc-2", "doc-3"]
    assert [job.batch_line for job in jobs] == [0, 1, 2, 3]
    assert {job.priority for job in jobs} == {"batch"} and {job.kind for job in jobs} == {"chat"}
    # body.model named the tier, so the stored request lets the tier route
    assert all("model" not in job.request for job in jobs)
    assert api.services.publish_marks is not None
    queued = queued_job_ids(api.redis, f"tier.{api.tier}.batch")
    assert queued[-4:] == [job.id for job in jobs]


def test_openai_form_reads_an_uploaded_file(api: Api, auth: dict[str, str]) -> None:
    text = "\n".join(json.dumps(line) for line in api.lines(2)) + "\n"
    upload = api.client.post(
        "/v1/files", files={"file": ("docs.jsonl", text.encode())}, data={"purpose": "batch"}, headers=auth
    )
    assert upload.status_code == 200, upload.text
    file = upload.json()
    assert file["id"].startswith("file-") and file["bytes"] == len(text.encode())
    assert file["purpose"] == "batch" and file["filename"] == "docs.jsonl" and file["object"] == "file"
    assert api.get(f"/v1/files/{file['id']}", auth).json() == file
    assert api.get(f"/v1/files/{file['id']}/content", auth).text == text
    body = {"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    response = api.client.post("/v1/batches", json=body, headers=auth)
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["input_file_id"] == file["id"] and batch["completion_window"] == "24h"
    assert batch["expires_at"] == batch["created_at"] + 86_400
    assert {job.completion_window for job in api.jobs(batch["id"])} == {"24h"}


def test_direct_json_form_takes_request_bodies(api: Api, auth: dict[str, str]) -> None:
    jobs = [
        {"messages": [{"role": "user", "content": "one"}], "custom_id": "first"},
        {"messages": [{"role": "user", "content": "two"}], "max_tokens": 5},
    ]
    response = api.client.post(
        "/v1/batches", json={"tier": api.tier, "jobs": jobs, "metadata": {"k": "v"}}, headers=auth
    )
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["completion_window"] == "now" and batch["metadata"] == {"k": "v"}
    rows = api.jobs(batch["id"])
    assert [row.custom_id for row in rows] == ["first", "line-2"]
    assert rows[1].request["max_tokens"] == 5


def test_model_alias_resolves_to_the_first_tier_serving_it(api: Api, auth: dict[str, str]) -> None:
    alias = ALIAS
    response = api.post_jsonl(auth, api.lines(2, model=alias))
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == api.other_tier
    assert {job.request["model"] for job in api.jobs(response.json()["id"])} == {alias}
    # emu-b is served by several tiers: the first in config order takes the batch
    first = next(name for name, tier in api.settings.tiers.items() if "emu-b" in tier.models)
    shared = api.post_jsonl(auth, api.lines(1, model="emu-b"))
    assert shared.status_code == 200 and shared.json()["tier"] == first
    by_name = api.post_jsonl(auth, api.lines(1, model=api.tier))
    assert by_name.status_code == 200 and by_name.json()["tier"] == api.tier
    mixed = api.lines(1, model=api.tier) + api.lines(1, model=alias, start=1)
    error = assert_error(api.post_jsonl(auth, mixed), 422, "invalid_batch_file")
    assert [(e["line"], e["code"]) for e in error["errors"]] == [(2, "unknown_model")]


# Validation: every bad line with its number, nothing queued


def test_bad_file_is_rejected_whole_with_line_numbers(api: Api, auth: dict[str, str]) -> None:
    lines = [json.dumps(line) for line in api.lines(3)]
    lines.insert(1, '{"custom_id": "broken", "method": ')  # line 2: not JSON
    lines.append(json.dumps(api.lines(1)[0]))  # line 5: doc-0 again
    before = queued_job_ids(api.redis, f"tier.{api.tier}.batch")
    error = assert_error(api.post_jsonl(auth, "\n".join(lines), tier=api.tier), 422, "invalid_batch_file")
    assert [(e["line"], e["code"]) for e in error["errors"]] == [
        (2, "invalid_json"),
        (5, "duplicate_custom_id"),
    ]
    assert error["errors"][1]["custom_id"] == "doc-0" and error["more_errors"] == 0
    assert queued_job_ids(api.redis, f"tier.{api.tier}.batch") == before
    assert api.get("/v1/batches", auth).json()["data"] == []


def test_each_line_is_checked_like_a_job(api: Api, auth: dict[str, str]) -> None:
    good = api.lines(1)[0]
    cases = [
        {**good, "custom_id": "a", "body": {"model": api.tier, "messages": []}},
        {**good, "custom_id": "b", "body": {"model": "gpt-nope", "messages": good["body"]["messages"]}},
        {**good, "custom_id": "c", "body": {**good["body"], "max_tokens": 10**9}},
        {**good, "custom_id": "d", "url": "/v1/embeddings"},
        {**good, "custom_id": "e", "method": "GET"},
        {**good, "custom_id": ""},
        ["not", "an", "object"],
    ]
    error = assert_error(api.post_jsonl(auth, cases, tier=api.tier), 422, "invalid_batch_file")
    codes = [(e["line"], e["code"]) for e in error["errors"]]
    assert codes == [
        (1, "validation_error"),
        (2, "unknown_model"),
        (3, "max_tokens_out_of_range"),
        (4, "wrong_endpoint"),
        (5, "invalid_method"),
        (6, "invalid_custom_id"),
        (7, "invalid_line"),
    ]


def test_error_list_is_capped_and_says_how_many_more(api: Api, auth: dict[str, str]) -> None:
    error = assert_error(api.post_jsonl(auth, "{\n" * 150, tier=api.tier), 422, "invalid_batch_file")
    assert len(error["errors"]) == 100 and error["more_errors"] == 50


def test_skip_invalid_lines_runs_the_rest_and_reports_them(api: Api, auth: dict[str, str]) -> None:
    lines = [json.dumps(line) for line in api.lines(3)]
    lines.insert(1, "nope")
    response = api.post_jsonl(auth, "\n".join(lines), tier=api.tier, skip_invalid_lines="true")
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["request_counts"] == {"total": 4, "completed": 0, "failed": 1}
    assert batch["counts"]["invalid"] == 1 and batch["counts"]["queued"] == 3
    assert batch["errors"]["data"][0]["line"] == 2
    assert [job.batch_line for job in api.jobs(batch["id"])] == [0, 2, 3]
    errors = jsonl(api.get(f"/v1/batches/{batch['id']}/errors", auth))
    assert [e["error"]["line"] for e in errors] == [2] and errors[0]["response"] is None


def test_all_lines_invalid_and_skipped_fails_the_batch(api: Api, auth: dict[str, str]) -> None:
    response = api.post_jsonl(auth, "x\ny", tier=api.tier, skip_invalid_lines="true")
    assert response.status_code == 200, response.text
    batch = api.get(f"/v1/batches/{response.json()['id']}", auth).json()
    assert batch["status"] == "failed" and batch["failed_at"] is not None
    assert batch["error_file_id"] is not None
    lines = jsonl(api.get(f"/v1/files/{batch['error_file_id']}/content", auth))
    assert [line["error"]["line"] for line in lines] == [1, 2]


def test_batch_level_fields_are_checked(api: Api, auth: dict[str, str]) -> None:
    assert_error(api.post_jsonl(auth, api.lines(1), tier="no-such-tier"), 400, "unknown_tier")
    assert_error(
        api.post_jsonl(auth, api.lines(1), tier=api.tier, callback_url="ftp://x"), 400, "invalid_callback_url"
    )
    loopback = api.post_jsonl(auth, api.lines(1), tier=api.tier, callback_url="http://127.0.0.1:9/hook")
    assert_error(loopback, 400, "unsafe_callback_url")  # the webhook SSRF guard, as for jobs
    assert_error(api.post_jsonl(auth, ""), 422, "invalid_batch_file")
    not_json = api.client.post("/v1/batches", content="x", headers={**auth, "Content-Type": "text/plain"})
    assert_error(not_json, 415, "unsupported_media_type")
    missing = api.client.post(
        "/v1/batches", json={"input_file_id": "file-nope", "endpoint": "/v1/chat/completions"}, headers=auth
    )
    assert_error(missing, 404, "not_found")
    bad_form = api.client.post("/v1/batches", json={"tier": api.tier, "jobs": []}, headers=auth)
    assert_error(bad_form, 422, "validation_error")
    bad_purpose = api.client.post(
        "/v1/files", files={"file": ("a", b"x")}, data={"purpose": "fine-tune"}, headers=auth
    )
    assert_error(bad_purpose, 400, "invalid_request")


# Limits


def test_line_and_byte_limits(tmp_path: Path, redis_url: str, database_url: str) -> None:
    with batches_api(
        tmp_path, redis_url, database_url, max_batch_lines=5, max_batch_bytes=4000, max_body_bytes=600
    ) as api:
        auth = api.tenant()
        assert_error(api.post_jsonl(auth, api.lines(6), tier=api.tier), 413, "batch_too_large")
        # uploads to batch routes may exceed max_body_bytes, up to max_batch_bytes
        assert api.post_jsonl(auth, api.lines(5), tier=api.tier).status_code == 200
        assert len("\n".join(json.dumps(line) for line in api.lines(5))) > 600
        big = "x" * 5000
        assert_error(api.post_jsonl(auth, big, tier=api.tier), 413, "payload_too_large")
        upload = api.client.post(
            "/v1/files", files={"file": ("a", big.encode())}, data={"purpose": "batch"}, headers=auth
        )
        assert_error(upload, 413, "payload_too_large")
        # other routes keep their own limit
        job = {"tier": api.tier, "request": {"messages": [{"role": "user", "content": "y" * 2000}]}}
        assert_error(api.client.post("/v1/jobs", json=job, headers=auth), 413, "payload_too_large")


# Reading, listing, isolation


def test_list_pages_with_after_as_openai(api: Api) -> None:
    auth = api.tenant()
    ids = [api.create(auth, 1)["id"] for _ in range(3)]
    first = api.get("/v1/batches", auth, limit=2).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True and first["first_id"] == ids[2] and first["last_id"] == ids[1]
    second = api.get("/v1/batches", auth, limit=2, after=first["last_id"]).json()
    assert [b["id"] for b in second["data"]] == [ids[0]] and second["has_more"] is False


def test_another_tenants_batch_and_files_do_not_exist(api: Api, auth: dict[str, str]) -> None:
    batch = api.create(auth, 1)
    upload = api.client.post(
        "/v1/files", files={"file": ("a", b"{}")}, data={"purpose": "batch"}, headers=auth
    )
    other = api.tenant()
    for path in (
        f"/v1/batches/{batch['id']}",
        f"/v1/batches/{batch['id']}/output",
        f"/v1/batches/{batch['id']}/errors",
    ):
        assert_error(api.get(path, other), 404, "not_found")
    assert_error(api.client.post(f"/v1/batches/{batch['id']}/cancel", headers=other), 404, "not_found")
    file_id = upload.json()["id"]
    assert_error(api.get(f"/v1/files/{file_id}", other), 404, "not_found")
    assert_error(api.get(f"/v1/files/{file_id}/content", other), 404, "not_found")
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    assert_error(api.client.post("/v1/batches", json=body, headers=other), 404, "not_found")
    assert api.get("/v1/batches", other).json()["data"] == []
    assert_error(api.get(f"/v1/batches/{batch['id']}", {}), 401, "invalid_api_key")


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
