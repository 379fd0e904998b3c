"""Creating batches at the API: the three forms, every bad line reported with its number, and
the line and byte limits."""

from __future__ import annotations

import json
from pathlib import Path

import batches_api_support
from api_harness import assert_error
from batches_api_support import ALIAS, Api, batches_api, jsonl
from tests_support import queued_job_ids

api, auth = batches_api_support.api, batches_api_support.auth  # the shared fixtures, by name


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
    queued = queued_job_ids(api.redis, f"tier.{api.tier}.batch")
    assert queued[-4:] == [job.id for job in jobs]
    # Each published line is marked as such, so the reconciler does not publish it again.
    api.services.publish_marks.flush()  # the marks are written in the background
    assert all(job.published_at is not None for job in api.jobs(batch["id"]))


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
