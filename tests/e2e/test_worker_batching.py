"""End to end: local jobs meet in batches in the threads worker; embedding jobs on both providers."""

from __future__ import annotations

import math
from typing import Any

from e2e_stack import Stack

from workers.providers.local_weights import cache_dir, ensure_cached

TOPICS = ["the sea", "a mountain", "a city at night", "autumn leaves", "a small robot", "the moon",
          "a quiet library", "a summer storm"]  # fmt: skip


def submit_embedding(stack: Stack, tier: str, inputs: list[str] | str, **request: Any) -> dict[str, Any]:
    body = {"tier": tier, "kind": "embedding", "cache": "off", "request": {"input": inputs, **request}}
    response = stack.post("/v1/jobs", stack.keys["a"], json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_local_jobs_share_batches_and_a_poisoned_one_fails_alone(e2e: Stack) -> None:
    ensure_cached(cache_dir(e2e.settings))
    jobs = [e2e.submit("local", f"Write one sentence about {topic}.", max_tokens=8) for topic in TOPICS]
    # 3,000 words are far past SmolLM2's 2,048-token context: this job cannot run at all.
    poisoned = e2e.submit("local", "word " * 3000, max_tokens=8)

    done = [e2e.wait_final(job["id"], timeout=300) for job in jobs]
    failed = e2e.wait_final(poisoned["id"], timeout=300)

    assert [job["status"] for job in done] == ["succeeded"] * len(TOPICS), done
    assert all(job["result"]["choices"][0]["message"]["content"] for job in done)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "context_length_exceeded"
    sizes = [job["attempt_log"][-1].get("batch_size", 1) for job in done]
    assert max(sizes) > 1, f"no two local jobs shared a batch: {sizes}"


def test_embedding_job_on_local_minilm(e2e: Stack) -> None:
    texts = ["A cat sleeps on the sofa.", "A kitten naps on the couch.", "Stock markets fell sharply today."]
    job = submit_embedding(e2e, "embed", texts)
    assert job["kind"] == "embedding"

    done = e2e.wait_final(job["id"], timeout=180)

    assert done["status"] == "succeeded", done
    assert done["kind"] == "embedding" and done["model"] == "minilm" and done["provider"] == "local"
    result = done["result"]
    assert result["object"] == "list" and result["model"] == "all-MiniLM-L6-v2"
    assert [item["index"] for item in result["data"]] == [0, 1, 2]
    vectors = [item["embedding"] for item in result["data"]]
    assert all(len(vector) == 384 for vector in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in vector)) - 1) < 1e-3 for vector in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    usage = result["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] == done["usage"]["prompt_tokens"]
    assert done["usage"]["prompt_tokens"] > len(texts)
    assert done["usage"]["completion_tokens"] == 0
    assert done["cost_usd"] > 0  # minilm is priced in the test config


def test_embedding_job_on_the_emulator_with_base64_vectors(e2e: Stack) -> None:
    job = submit_embedding(e2e, "embed-emu", ["first text", "second text"], encoding_format="base64")

    done = e2e.wait_final(job["id"], timeout=60)

    assert done["status"] == "succeeded", done
    assert done["model"] == "emu-embed" and done["provider"] == "emulator"
    data = done["result"]["data"]
    assert len(data) == 2 and all(isinstance(item["embedding"], str) for item in data)
    prompt_tokens = done["usage"]["prompt_tokens"]
    assert prompt_tokens > 0
    assert done["cost_usd"] == round(prompt_tokens * 0.02 / 1_000_000, 8)


def test_an_input_longer_than_minilm_reads_fails_that_job_only(e2e: Stack) -> None:
    too_long = submit_embedding(e2e, "embed", ["fine", "word " * 400])
    fine = submit_embedding(e2e, "embed", "a short text")

    assert e2e.wait_final(fine["id"], timeout=120)["status"] == "succeeded"
    failed = e2e.wait_final(too_long["id"], timeout=120)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "context_length_exceeded"


def test_a_repeated_embedding_job_is_answered_by_the_exact_cache(e2e: Stack) -> None:
    body = {"tier": "embed-emu", "kind": "embedding", "cache": "exact", "request": {"input": ["cache me"]}}
    first = e2e.post("/v1/jobs", e2e.keys["a"], json=body)
    assert first.status_code == 202, first.text
    done = e2e.wait_final(first.json()["id"], timeout=60)
    assert done["status"] == "succeeded", done

    again = e2e.post("/v1/jobs", e2e.keys["a"], json=body)

    assert again.status_code == 200, again.text
    cached = again.json()
    assert cached["kind"] == "embedding" and cached["status"] == "succeeded"
    assert cached["cache"]["hit"] == "exact" and cached["cost_usd"] == 0
    assert cached["result"]["data"] == done["result"]["data"]
