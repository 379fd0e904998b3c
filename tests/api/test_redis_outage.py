"""While Redis is down the API answers 503 ``service_unavailable`` with Retry-After, never 500;
a submission whose row was committed answers 202 (the reconciler publishes it).

The API runs on a Redis server of this test's own, which it kills (tests/redis_server.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis_server import RedisServer, private_redis
from sqlmodel import Session, col, select

from infra.launch import free_port
from schemas.tables import Job

TIERS = {"tier": ["emu-a"], "other_tier": ["emu-b"]}
MESSAGES = [{"role": "user", "content": "Is Redis there?"}]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def api(tmp_path: Path, redis_server: RedisServer) -> Iterator[ApiHarness]:
    with open_api(ApiHarness, tmp_path, redis_server.url, "", TIERS) as harness:
        yield harness
        if redis_server.process is None:  # the harness deletes its queues on the way out
            redis_server.start()


def submit(api: ApiHarness, headers: dict[str, str]) -> Any:
    body = {"tier": api.tier, "cache": "off", "request": {"messages": MESSAGES}}
    return api.client.post("/v1/jobs", json=body, headers=headers)


def job_rows(api: ApiHarness) -> list[Job]:
    with Session(api.engine) as session:
        return list(session.exec(select(Job).where(col(Job.tier) == api.tier)))


def test_submissions_while_redis_is_down_answer_503_with_retry_after_and_create_no_job(
    api: ApiHarness, redis_server: RedisServer
) -> None:
    headers = api.tenant({"submit", "read"})
    assert submit(api, headers).status_code == 202
    redis_server.kill()

    answers = [submit(api, headers) for _ in range(3)]

    for answer in answers:
        body = assert_error(answer, 503, "service_unavailable")
        assert int(answer.headers["Retry-After"]) >= 1
        assert body["retry_after_s"] > 0
    assert len(job_rows(api)) == 1  # nothing was committed for the refused ones


def test_reads_that_need_redis_answer_503_and_the_api_recovers_when_redis_returns(
    api: ApiHarness, redis_server: RedisServer
) -> None:
    headers = api.tenant({"submit", "read"})
    redis_server.kill()
    down = api.client.get(f"/v1/limits?tier={api.tier}", headers=headers)
    assert_error(down, 503, "service_unavailable")

    redis_server.start()  # empty, on the same port

    assert submit(api, headers).status_code == 202


def test_a_redis_that_refuses_writes_during_a_failover_answers_503_too(
    api: ApiHarness, redis_server: RedisServer
) -> None:
    headers = api.tenant({"submit", "read"})
    admin = Redis.from_url(redis_server.url)
    admin.replicaof("127.0.0.1", str(free_port()))  # now a read-only replica of nothing: READONLY
    try:
        refused = submit(api, headers)
    finally:
        admin.replicaof("NO", "ONE")
        admin.close()

    assert_error(refused, 503, "service_unavailable")
    assert refused.headers["Retry-After"]
    assert submit(api, headers).status_code == 202


def test_a_publish_that_fails_after_the_commit_still_answers_202_and_leaves_the_row_to_the_reconciler(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = api.tenant({"submit", "read"})

    def redis_gone(*_: Any) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(api.services.dispatcher, "publish", redis_gone)

    answer = submit(api, headers)

    assert answer.status_code == 202, answer.text
    [row] = job_rows(api)
    assert (row.id, row.status, row.published_at) == (answer.json()["id"], "queued", None)
