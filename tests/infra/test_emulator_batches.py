"""The emulator's Files and Batches endpoints: OpenAI's shapes, background runs, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from emulator_support import served_emulator  # noqa: F401  (fixture)
from fastapi.testclient import TestClient
from tests_support import EMULATOR_KEY

from infra.emulator import EmulatorConfig, create_app
from infra.emulator.calls import parse_chat

FINAL = {"completed", "failed", "expired", "cancelled"}


def chat_line(custom_id: str, text: str, model: str = "emu-lane", **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": messages, **body},
    }


def jsonl(lines: list[Any]) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


@pytest.fixture
def client() -> Iterator[TestClient]:
    """An in-process emulator whose event loop lives across requests, so batches run."""
    app = create_app(EmulatorConfig(batch_delay_s=0.05))
    with TestClient(app, headers=EMULATOR_KEY) as test_client:
        yield test_client


def upload(client: TestClient, data: bytes, purpose: str = "batch", name: str = "in.jsonl") -> dict[str, Any]:
    response = client.post("/v1/files", files={"file": (name, data)}, data={"purpose": purpose})
    assert response.status_code == 200, response.text
    return dict(response.json())


def start(client: TestClient, lines: list[Any], **fields: Any) -> dict[str, Any]:
    file = upload(client, jsonl(lines))
    body = {
        "input_file_id": file["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    response = client.post("/v1/batches", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_final(client: TestClient, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        batch = client.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] in FINAL:
            return dict(batch)
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} did not end")


def records(client: TestClient, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    content = client.get(f"/v1/files/{file_id}/content")
    assert content.status_code == 200
    return [json.loads(line) for line in content.text.splitlines()]


def test_upload_is_an_openai_file_and_its_content_reads_back(client: TestClient) -> None:
    data = jsonl([chat_line("a", "hello")])
    file = upload(client, data)
    assert file["object"] == "file" and file["id"].startswith("file-")
    assert file["bytes"] == len(data) and file["purpose"] == "batch"
    assert client.get(f"/v1/files/{file['id']}").json() == file
    assert client.get(f"/v1/files/{file['id']}/content").content == data
    assert client.get("/v1/files/file-nope/content").status_code == 404


def test_upload_refuses_an_unknown_purpose_and_a_batch_file_that_is_not_jsonl(client: TestClient) -> None:
    bad_purpose = client.post("/v1/files", files={"file": ("x.jsonl", b"{}")}, data={"purpose": "nope"})
    assert bad_purpose.status_code == 400 and bad_purpose.json()["error"]["param"] == "purpose"
    not_jsonl = client.post("/v1/files", files={"file": ("x.csv", b"a,b")}, data={"purpose": "batch"})
    assert not_jsonl.status_code == 400


def test_batch_completes_with_the_same_answers_and_usage_as_live_calls(client: TestClient) -> None:
    lines = [chat_line(f"line-{n}", f"Summarise document {n}", max_tokens=40) for n in range(3)]
    batch = start(client, lines, metadata={"switchyard_batch": "pbat_1"})
    assert batch["object"] == "batch" and batch["status"] == "validating"
    assert batch["metadata"] == {"switchyard_batch": "pbat_1"}
    done = wait_final(client, batch["id"])
    assert done["status"] == "completed" and done["request_counts"] == {
        "total": 3,
        "completed": 3,
        "failed": 0,
    }
    assert done["completed_at"] and done["in_progress_at"] and done["error_file_id"] is None
    output = records(client, done["output_file_id"])
    assert [record["custom_id"] for record in output] == ["line-0", "line-1", "line-2"]
    for record, line in zip(output, lines, strict=True):
        live, tokens = parse_chat(line["body"]).reply()
        body = record["response"]["body"]
        assert record["response"]["status_code"] == 200 and record["error"] is None
        assert body["choices"][0]["message"]["content"] == live["choices"][0]["message"]["content"]
        assert body["usage"] == live["usage"] and body["usage"]["total_tokens"] == tokens
    counters = client.get("/emulator/batches").json()
    assert counters["created"] == 1 and counters["lines"] == 3
    assert client.get("/emulator/stats").json()["requests"] == 0  # no live calls


def test_a_bad_input_line_fails_the_batch_with_its_line_number(client: TestClient) -> None:
    lines = [
        chat_line("a", "ok"),
        "{not json",
        chat_line("a", "duplicate id"),
        {**chat_line("c", "x"), "url": "/v1/other"},
    ]
    done = wait_final(client, start(client, lines)["id"])
    assert done["status"] == "failed"
    assert [error["line"] for error in done["errors"]["data"]] == [2, 3, 4]
    assert "Duplicate custom_id" in done["errors"]["data"][1]["message"]


def test_create_refuses_unknown_files_endpoints_and_windows(client: TestClient) -> None:
    file = upload(client, jsonl([chat_line("a", "x")]))
    base = {"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    for change in (
        {"input_file_id": "file-missing"},
        {"endpoint": "/v1/images"},
        {"completion_window": "1h"},
    ):
        response = client.post("/v1/batches", json={**base, **change})
        assert response.status_code == 400 and response.json()["error"]["message"]


def test_scripted_line_errors_go_to_the_error_file_with_their_status(client: TestClient) -> None:
    client.post("/emulator/batches", json={"line_errors": {"bad": 400, "busy": 500}})
    lines = [chat_line("good", "fine"), chat_line("bad", "refused"), chat_line("busy", "overloaded")]
    done = wait_final(client, start(client, lines)["id"])
    assert done["status"] == "completed" and done["request_counts"]["failed"] == 2
    assert [r["custom_id"] for r in records(client, done["output_file_id"])] == ["good"]
    errors = {r["custom_id"]: r["response"] for r in records(client, done["error_file_id"])}
    assert errors["bad"]["status_code"] == 400 and errors["busy"]["status_code"] == 500
    assert errors["bad"]["body"]["error"]["code"]


def test_a_line_the_model_would_refuse_is_a_400_line_not_a_failed_batch(client: TestClient) -> None:
    lines = [chat_line("ok", "fine"), {**chat_line("empty", "x"), "body": {"model": "m", "messages": []}}]
    done = wait_final(client, start(client, lines)["id"])
    assert done["status"] == "completed"
    assert records(client, done["error_file_id"])[0]["response"]["status_code"] == 400


def test_scripted_failure_and_expiry_apply_to_the_next_batches_in_order(client: TestClient) -> None:
    client.post("/emulator/batches", json={"outcomes": ["fail", "expire"], "expire_after_lines": 1})
    lines = [chat_line("first", "one"), chat_line("second", "two")]
    failed = wait_final(client, start(client, lines)["id"])
    assert failed["status"] == "failed" and failed["errors"]["data"][0]["code"] == "batch_failed"
    expired = wait_final(client, start(client, lines)["id"])
    assert expired["status"] == "expired" and expired["expired_at"]
    assert [r["custom_id"] for r in records(client, expired["output_file_id"])] == ["first"]
    leftover = records(client, expired["error_file_id"])
    assert leftover[0]["custom_id"] == "second" and leftover[0]["error"]["code"] == "batch_expired"
    assert wait_final(client, start(client, lines)["id"])["status"] == "completed"


def test_cancel_stops_a_running_batch_and_a_final_one_cannot_be_cancelled(client: TestClient) -> None:
    client.post("/emulator/batches", json={"completion_delay_s": 30})
    batch = start(client, [chat_line("a", "slow")])
    cancelling = client.post(f"/v1/batches/{batch['id']}/cancel").json()
    assert cancelling["status"] == "cancelling"
    done = wait_final(client, batch["id"])
    assert done["status"] == "cancelled" and done["output_file_id"] is None
    assert client.post(f"/v1/batches/{batch['id']}/cancel").status_code == 409
    assert client.post("/v1/batches/batch_nope/cancel").status_code == 404


def test_list_is_newest_first_and_pages_with_after(client: TestClient) -> None:
    ids = [start(client, [chat_line("a", str(n))])["id"] for n in range(3)]
    page = client.get("/v1/batches", params={"limit": 2}).json()
    assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    rest = client.get("/v1/batches", params={"limit": 2, "after": page["last_id"]}).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False


def test_reset_restores_the_configured_delay_and_clears_batch_faults(client: TestClient) -> None:
    client.post(
        "/emulator/batches", json={"completion_delay_s": 9, "outcomes": ["fail"], "line_errors": {"a": 500}}
    )
    client.post("/emulator/reset")
    plan = client.get("/emulator/batches").json()["plan"]
    assert plan == {"completion_delay_s": 0.05, "outcomes": [], "expire_after_lines": 0, "line_errors": {}}


def test_official_openai_sdk_runs_a_batch_on_the_served_emulator(served_emulator: str) -> None:  # noqa: F811
    sdk = openai.OpenAI(base_url=f"{served_emulator}/v1", api_key="x", max_retries=0)
    httpx.post(f"{served_emulator}/emulator/batches", json={"completion_delay_s": 0.1})
    data = jsonl([chat_line("one", "Hello"), chat_line("two", "World")])
    file = sdk.files.create(file=("input.jsonl", data), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"k": "v"}
    )
    deadline = time.monotonic() + 10
    while batch.status not in FINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = sdk.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == 2 and batch.output_file_id
    output = sdk.files.content(batch.output_file_id).text.splitlines()
    assert [json.loads(line)["custom_id"] for line in output] == ["one", "two"]
    assert [b.id for b in sdk.batches.list(limit=5).data] == [batch.id]
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(batch.id)
