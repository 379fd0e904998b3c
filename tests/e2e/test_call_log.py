"""The call log end to end: jobs run by real workers against the emulator (a success, retries
after 503s, a permanent failure) and an exact-cache hit at the API; ``GET /v1/calls`` then shows
every call the workers settled, and the hit, with the filters an operator uses."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_stack import Stack
from sqlalchemy import select
from tests_support import new_tenant_key

from workers.db import make_engine
from workers.usage_sources import USAGE


def calls(e2e: Stack, key: str, **params: Any) -> list[dict[str, Any]]:
    response = e2e.get("/v1/calls", key, params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def test_the_call_log_shows_what_the_workers_settled_and_the_cache_answered(e2e: Stack) -> None:
    engine = make_engine(e2e.settings)
    tenant_id, key = new_tenant_key(engine, {"submit", "read"})
    e2e.emulator(
        "POST", "/emulator/faults", json={"model": "emu-retry", "responses": [503, 503], "mode": "sequence"}
    )
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    jobs = [
        e2e.submit("small", "call log: a plain success", key, cache="exact"),
        e2e.submit("retry", "call log: two 503s, then an answer", key),
        e2e.submit("bad", "call log: refused for good", key),
    ]
    ended = [e2e.wait_final(job["id"], key) for job in jobs]
    assert [job["status"] for job in ended] == ["succeeded", "succeeded", "failed"]
    body = {
        "tier": "small",
        "cache": "exact",
        "request": {"messages": [{"role": "user", "content": "call log: a plain success"}]},
    }
    hit = e2e.post("/v1/jobs", key, json=body)
    assert hit.status_code == 200 and hit.json()["cache"]["hit"] == "exact", hit.text

    log = calls(e2e, key)

    with engine.connect() as connection:
        usage = connection.execute(select(USAGE).where(USAGE.c.tenant_id == tenant_id)).mappings().all()
    engine.dispose()
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
        hit.json()["id"],
        0.0,
        ended[0]["model"],
    )
    assert answer["saved_usd"] == pytest.approx(ended[0]["cost_usd"]) and answer["saved_usd"] > 0
    assert log[0]["id"] == answer["id"]  # the newest
