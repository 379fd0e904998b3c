"""``POST /v1/jobs/{id}/feedback``: an in-process API and worker on real Redis, the database,
MiniLM and the provider emulator. A wrong semantic hit is evicted, never matched again and
counted in the namespace's estimated false-hit rate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import ApiHarness, assert_error, open_api
from tests_support import running_emulator

from workers.celery_app import create_celery
from workers.job_runner import run_job
from workers.runtime import Runtime

STORED = "How do I reset my password?"
PARAPHRASE = "What's the way to reset my password?"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as url:
        yield url


class Env(ApiHarness):
    """The API, and a worker runtime on the same settings that runs what it queues."""

    worker: Runtime

    def ask(self, headers: dict[str, str], text: str) -> dict[str, Any]:
        """Submit a semantic-mode question and, if it was queued, run it in the worker."""
        body = {
            "tier": self.tier,
            "cache": "semantic",
            "request": {"messages": [{"role": "user", "content": text}]},
        }
        submitted = self.client.post("/v1/jobs", json=body, headers=headers)
        assert submitted.status_code in (200, 202), submitted.text
        job_id = submitted.json()["id"]
        run_job(self.worker, job_id)
        job: dict[str, Any] = self.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "succeeded"
        return job

    def feedback(self, headers: dict[str, str], job_id: str, **body: Any) -> Any:
        return self.client.post(
            f"/v1/jobs/{job_id}/feedback", json=body or {"cache": "wrong"}, headers=headers
        )


@pytest.fixture
def env(tmp_path: Path, redis_url: str, database_url: str, emulator: str) -> Iterator[Env]:
    providers = {"emulator": {"base_url": f"{emulator}/v1"}}
    # No shadows here: only feedback moves the counts.
    with open_api(
        Env,
        tmp_path,
        redis_url,
        database_url,
        {"tier": ["emu-a"], "other_tier": ["emu-a"]},
        providers=providers,
        cache={"shadow_share": 0.0},
    ) as api:
        api.worker = Runtime(settings=api.settings, celery=create_celery(api.settings))
        yield api
        api.worker.engine.dispose()
        api.worker.redis.close()


def test_feedback_evicts_the_entry_and_the_next_identical_request_is_a_miss(env: Env) -> None:
    headers = env.tenant({"submit", "read"})
    first = env.ask(headers, STORED)
    hit = env.ask(headers, PARAPHRASE)
    assert hit["cache"]["hit"] == "semantic" and hit["cache"]["source_job"] == first["id"]
    entry = hit["cache"]["entry"]

    answer = env.feedback(headers, hit["id"])

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"job_id": hit["id"], "evicted": True, "negative_recorded": True, "counted": True}
    assert env.redis.get(env.services.keys.semantic_entry(entry["namespace"], entry["id"])) is None
    again = env.ask(headers, PARAPHRASE)
    assert again["cache"]["hit"] is None and again["cost_usd"] > 0
    assert again["result"]["choices"] != first["result"]["choices"]  # the emulator's answer to it


def test_feedback_counts_once_as_a_disagreement_in_the_stats(env: Env) -> None:
    headers = env.tenant({"submit", "read"})
    env.ask(headers, STORED)
    hit = env.ask(headers, PARAPHRASE)

    env.feedback(headers, hit["id"])
    repeated = env.feedback(headers, hit["id"])

    assert repeated.status_code == 200 and repeated.json()["counted"] is False
    assert repeated.json()["evicted"] is False
    semantic = env.client.get("/v1/cache/stats", headers=headers).json()["tiers"][env.tier]["semantic"]
    assert (semantic["verified"], semantic["disagreed"], semantic["estimated_false_hit_rate"]) == (1, 1, 1.0)
    [row] = semantic["namespaces"]
    assert row["namespace"] == hit["cache"]["entry"]["namespace"].rsplit(":", 1)[-1]
    assert len(row["namespace"]) == 32 and (row["verified"], row["disagreed"]) == (1, 1)


def test_feedback_on_a_job_no_semantic_hit_answered_is_a_conflict(env: Env) -> None:
    headers = env.tenant({"submit", "read"})
    fresh = env.ask(headers, STORED)

    error = assert_error(env.feedback(headers, fresh["id"]), 409, "not_a_semantic_hit")

    assert error["hit"] is None


def test_feedback_on_another_tenants_job_is_not_found(env: Env) -> None:
    mine, theirs = env.tenant({"submit", "read"}), env.tenant({"submit", "read"})
    env.ask(mine, STORED)
    hit = env.ask(mine, PARAPHRASE)

    assert_error(env.feedback(theirs, hit["id"]), 404, "not_found")
    assert_error(env.feedback(env.tenant({"read"}), hit["id"]), 403, "insufficient_scope")
    assert env.feedback(mine, hit["id"]).json()["evicted"] is True  # untouched by the others


@pytest.mark.parametrize(
    "body",
    [{"cache": "right"}, {"cache": "wrong", "note": "x"}, {"rating": 1}],
    ids=["unknown_value", "extra_field", "missing_field"],
)
def test_a_malformed_feedback_body_is_refused(env: Env, body: dict[str, Any]) -> None:
    headers = env.tenant({"submit", "read"})

    assert_error(env.feedback(headers, "job_nope", **body), 422, "validation_error")
