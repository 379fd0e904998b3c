"""The Files and Batches API in process that the batch test modules share, on SQLite and
PostgreSQL; no worker runs, so a test that needs jobs to end claims and finishes them through
the job store, as a worker does.

The fixtures are bound by name in each module that uses them (``api``, ``auth``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, open_api
from sqlmodel import Session, col, select
from tests_support import completion_body, database_url_for

from schemas.tables import Job
from workers import store

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
