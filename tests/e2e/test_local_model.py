"""End to end on the embedded default: a real completion from SmolLM2 in the worker."""

from __future__ import annotations

from e2e_stack import Stack

from workers.providers.local_weights import cache_dir, ensure_cached


def test_local_tier_answers_with_a_real_smollm2_completion(e2e: Stack) -> None:
    ensure_cached(cache_dir(e2e.settings))  # what `switchyard up` does before starting workers

    job = e2e.submit("local", "What is the capital of France? Answer in one word.", max_tokens=12)
    done = e2e.wait_final(job["id"], timeout=240)

    assert done["status"] == "succeeded", done
    assert done["model"] == "smollm2" and done["provider"] == "local"
    answer = done["result"]["choices"][0]["message"]["content"]
    assert "paris" in answer.lower()
    assert 0 < done["usage"]["completion_tokens"] <= 12
    assert done["usage"]["prompt_tokens"] > 10
    assert done["cost_usd"] == 0.0
