"""Schemathesis fuzzes every operation of the API's own OpenAPI schema: no input may cause a 5xx.

Cases are drawn from the schema and sent through a ``TestClient`` this module owns, so the
app's lifespan starts and stops with the module. (Schemathesis's lazy pytest loader does not
work with this pytest, hence hypothesis ``@given`` over each operation's strategy.) Most
cases are aimed at a real tier and real job ids, so the fuzzer gets past "unknown tier" and
"no such job" into validation, the database and the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from redis import Redis
from tests_support import database_url_for, delete_tier_queues, make_test_settings, new_tenant_key

from api.main import create_app
from workers.migrate import upgrade

EXAMPLES_PER_OPERATION = 25


@dataclass
class Target:
    """The app under fuzzing, an admin key, and real names for the fuzzer to aim at."""

    client: TestClient
    headers: dict[str, str]
    tier: str
    job_ids: list[str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    database_url = database_url_for(request, tmp)
    tier = f"fuzz{uuid.uuid4().hex[:8]}"
    configured = make_test_settings(
        tmp,
        redis_url,
        database_url,
        tiers={tier: {"models": ["emu-a", "emu-b"]}},
        max_wait_s=0.05,  # a fuzzed ?wait= on a queued job must not stall the run
        streaming={"max_stream_s": 0.05},  # nor may an event stream, which never ends by itself
    )
    upgrade(configured)
    with TestClient(create_app(configured)) as client:
        _, secret = new_tenant_key(client.app.state.services.engine, {"admin"})  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {secret}"}
        body = {"tier": tier, "request": {"messages": [{"role": "user", "content": "hi"}]}}
        job_ids = [client.post("/v1/jobs", json=body, headers=headers).json()["id"] for _ in range(2)]
        client.post(f"/v1/jobs/{job_ids[1]}/cancel", headers=headers)
        yield Target(client=client, headers=headers, tier=tier, job_ids=job_ids)
    redis = Redis.from_url(redis_url)
    delete_tier_queues(redis, [tier], configured.key_prefix)
    redis.close()


@pytest.fixture(scope="module")
def operations(target: Target) -> list[Any]:
    schema = schemathesis.openapi.from_dict(target.client.get("/openapi.json").json())
    found = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {(op.method.upper(), op.path) for op in found} >= {
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/{job_id}"),
        ("POST", "/v1/jobs/{job_id}/cancel"),
    }
    return found


def takes_input(operation: Any) -> bool:
    parts = (operation.query, operation.path_parameters, operation.headers, operation.body)
    return any(len(part) for part in parts)


def aimed(case: Any, target: Target, job_index: int) -> Any:
    """The case with a configured tier and an existing job id where it names them."""
    if isinstance(case.body, dict) and "tier" in case.body:
        case.body["tier"] = target.tier
        if isinstance(case.body.get("request"), dict):
            case.body["request"].pop("model", None)
    if case.path_parameters and "job_id" in case.path_parameters:
        case.path_parameters["job_id"] = target.job_ids[job_index % len(target.job_ids)]
    return case


def cases(operation: Any, mode: Any, target: Target) -> st.SearchStrategy[Any]:
    generated = operation.as_strategy(generation_mode=mode)
    aim = st.sampled_from([*range(len(target.job_ids)), None])
    return st.tuples(generated, aim).map(
        lambda pair: pair[0] if pair[1] is None else aimed(pair[0], target, pair[1])
    )


def encodable_part(part: Any) -> bool:
    """Whether a ``files`` entry (``(name, content)`` or ``(name, (filename, content, ...))``)
    holds content an HTTP client can send: text, bytes or a readable file. The fuzzer also
    makes numbers, which the encoder only trips over lazily, inside the app's first read."""
    value = part[1] if isinstance(part, tuple) and len(part) > 1 else part
    content = value[1] if isinstance(value, tuple) and len(value) > 1 else value
    return isinstance(content, (str, bytes)) or hasattr(content, "read")


def send(target: Target, case: Any) -> Any:
    """Send a generated case in process; cases the HTTP client cannot even encode are dropped."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=target.headers)
    if "data" in kwargs:  # requests' name for a raw body
        kwargs["content"] = kwargs.pop("data")
    kwargs.pop("cookies", None)
    if not all(map(encodable_part, kwargs.get("files") or [])):
        reject()  # the client's multipart encoder would fail while the app reads the body
    try:
        return target.client.request(**kwargs)
    except (UnicodeEncodeError, TypeError, ValueError):
        reject()


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
def test_no_input_makes_the_api_answer_5xx(target: Target, operations: list[Any], mode: Any) -> None:
    for operation in operations:
        if mode is schemathesis.GenerationMode.NEGATIVE and not takes_input(operation):
            continue  # nothing to make invalid

        @given(case=cases(operation, mode, target))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = send(target, case)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, (
                f"{where} answered {response.status_code}: {response.text[:500]}"
            )
            if response.status_code >= 400:
                error = response.json()["error"]
                assert isinstance(error["code"], str) and error["code"], where
                assert isinstance(error["message"], str), where

        check()
