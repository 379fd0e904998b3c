"""The call log end to end: jobs run by real workers against the emulator (a success, retries
after 503s, a permanent failure) and an exact-cache hit at the API; ``GET /v1/calls`` then shows
every call the workers settled, and the hit, with the filters an operator uses."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_stack import Stack, settle_a_mix


def calls(e2e: Stack, key: str, **params: Any) -> list[dict[str, Any]]:
    response = e2e.get("/v1/calls", key, params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def test_the_call_log_shows_what_the_workers_settled_and_the_cache_answered(e2e: Stack) -> None:
    mix = settle_a_mix(e2e, "call log")
    key, ended, usage = mix.key, mix.ended, mix.usage

    log = calls(e2e, key)

    assert len(log) == len(usage) + 1 == 6  # 1 + 3 + 1 calls, and the hit
    assert sum(row["cost_usd"] for row in log) == pytest.approx(sum(row["cost_usd"] for row in usage))
    retried = calls(e2e, key, job_id=ended[1]["id"])
    assert [(row["attempt"], row["outcome"]) for row in retried] == [(3, "ok"), (2, "error"), (1, "error")]
    assert {row["error_code"] for row in retried[1:]} == {"provider_unavailable"}
    failed = calls(e2e, key, status="error", tier="bad")
    assert [(row["job_id"], row["error_code"]) for row in failed] == [
        (ended[2]["id"], "provider_bad_request")
    ]
    (answer,) = calls(e2e, key, cache="exact")
    assert (answer["job_id"], answer["cost_usd"], answer["model"]) == (
        mix.hit["id"],
        0.0,
        ended[0]["model"],
    )
    assert answer["saved_usd"] == pytest.approx(ended[0]["cost_usd"]) and answer["saved_usd"] > 0
    assert log[0]["id"] == answer["id"]  # the newest
