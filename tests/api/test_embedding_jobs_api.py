"""Embedding jobs at the API, on SQLite and PostgreSQL: accepted, queued, and every bad input refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from tests_support import (
    database_url_for,
    delete_tier_queues,
    make_test_settings,
    new_tenant_key,
    queued_job_ids,
)

from api.main import create_app
from schemas.tables import Job
from workers.migrate import upgrade


@dataclass
class Api:
    client: TestClient
    embed_tier: str
    chat_tier: str
    semantic_tier: str
    headers: dict[str, str]

    def submit(self, body: dict[str, Any]) -> Any:
        return self.client.post("/v1/jobs", json=body, headers=self.headers)

    def embedding(self, **request: Any) -> dict[str, Any]:
        return {"tier": self.embed_tier, "kind": "embedding", "request": {"input": ["a text"], **request}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("embedding-api")
    embed, chat, semantic = (f"api{uuid.uuid4().hex[:8]}" for _ in range(3))
    tiers = {
        embed: {"models": ["minilm", "emu-embed"]},
        chat: {"models": ["emu-a"]},
        semantic: {"models": ["emu-embed"], "cache": "semantic"},
    }
    settings = make_test_settings(
        tmp,
        redis_url,
        database_url_for(request, tmp),
        tiers=tiers,
        max_embedding_inputs=4,
        max_content_chars=100,
    )
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        _, secret = new_tenant_key(client.app.state.services.engine)  # type: ignore[attr-defined]
        try:
            yield Api(client, embed, chat, semantic, {"Authorization": f"Bearer {secret}"})
        finally:
            delete_tier_queues(client.app.state.services.redis, [embed, chat, semantic], settings.key_prefix)  # type: ignore[attr-defined]


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def test_an_embedding_job_is_accepted_queued_and_shows_its_kind(api: Api) -> None:
    response = api.submit(api.embedding(input=["first", "second"], encoding_format="base64"))

    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "embedding" and job["status"] == "queued"
    assert job["request"] == {"input": ["first", "second"], "encoding_format": "base64"}
    assert job["cache"]["mode"] == "exact"
    services = api.client.app.state.services  # type: ignore[attr-defined]
    assert job["id"] in queued_job_ids(services.redis, f"tier.{api.embed_tier}.live")
    with Session(services.engine) as session:
        row = session.get(Job, job["id"])
        assert row is not None and row.kind == "embedding"
    assert api.client.get(f"/v1/jobs/{job['id']}", headers=api.headers).json()["kind"] == "embedding"


def test_a_chat_job_still_defaults_to_kind_chat(api: Api) -> None:
    body = {"tier": api.chat_tier, "request": {"messages": [{"role": "user", "content": "hi"}]}}
    response = api.submit(body)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "chat"


def test_an_embedding_job_on_a_chat_tier_is_wrong_job_kind(api: Api) -> None:
    error = error_of(api.submit({**api.embedding(), "tier": api.chat_tier}), 400, "wrong_job_kind")
    assert error["tier_kind"] == "chat"


def test_a_chat_job_on_an_embedding_tier_is_wrong_job_kind(api: Api) -> None:
    body = {"tier": api.embed_tier, "request": {"messages": [{"role": "user", "content": "hi"}]}}
    error = error_of(api.submit(body), 400, "wrong_job_kind")
    assert error["tier_kind"] == "embedding"


def test_an_unknown_tier_or_model_is_refused(api: Api) -> None:
    error_of(api.submit({**api.embedding(), "tier": "no-such-tier"}), 400, "unknown_tier")
    error_of(api.submit(api.embedding(model="emu-a")), 400, "unknown_model")


def test_too_many_inputs_or_characters_are_refused(api: Api) -> None:
    error = error_of(api.submit(api.embedding(input=["x"] * 5)), 400, "too_many_inputs")
    assert error["max_inputs"] == 4
    error_of(api.submit(api.embedding(input=["x" * 60, "y" * 60])), 400, "content_too_long")


def test_the_semantic_cache_is_refused_and_a_semantic_tier_default_becomes_exact(api: Api) -> None:
    error_of(api.submit({**api.embedding(), "cache": "semantic"}), 400, "cache_mode_unsupported")

    response = api.submit({**api.embedding(), "tier": api.semantic_tier})
    assert response.status_code == 202, response.text
    assert response.json()["cache"]["mode"] == "exact"


@pytest.mark.parametrize(
    "request_body",
    [
        {"messages": [{"role": "user", "content": "a chat body"}]},
        {"input": []},
        {"input": ""},
        {"input": ["fine", ""]},
        {"input": [1, 2, 3]},
        {"input": "x", "encoding_format": "int8"},
        {"input": "x", "dimensions": 0},
        {"input": "x", "unknown_field": 1},
    ],
)
def test_a_malformed_embeddings_body_is_a_validation_error(api: Api, request_body: dict[str, Any]) -> None:
    body = {"tier": api.embed_tier, "kind": "embedding", "request": request_body}
    error_of(api.submit(body), 422, "validation_error")


def test_an_unknown_kind_is_a_validation_error(api: Api) -> None:
    error_of(api.submit({**api.embedding(), "kind": "image"}), 422, "validation_error")
