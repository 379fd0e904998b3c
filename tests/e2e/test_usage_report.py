"""Usage reports end to end: jobs run by real workers against the emulator (a success, retries
after 503s, a permanent failure, an exact-cache hit); ``GET /v1/usage`` then shows what the jobs
and their usage rows add up to, from the rollups the workers wrote as the calls settled."""

from __future__ import annotations

import pytest
from e2e_stack import Stack
from sqlalchemy import select
from tests_support import new_tenant_key

from workers.db import make_engine
from workers.usage_sources import USAGE


def test_the_report_adds_up_what_the_workers_settled(e2e: Stack) -> None:
    engine = make_engine(e2e.settings)
    tenant_id, key = new_tenant_key(engine, {"submit", "read"})
    e2e.emulator(
        "POST", "/emulator/faults", json={"model": "emu-retry", "responses": [503, 503], "mode": "sequence"}
    )
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    jobs = [
        e2e.submit("small", "usage: a plain success", key, cache="exact"),
        e2e.submit("retry", "usage: two 503s, then an answer", key),
        e2e.submit("bad", "usage: refused for good", key),
    ]
    ended = [e2e.wait_final(job["id"], key) for job in jobs]
    assert [job["status"] for job in ended] == ["succeeded", "succeeded", "failed"]
    body = {
        "tier": "small",
        "cache": "exact",
        "request": {"messages": [{"role": "user", "content": "usage: a plain success"}]},
    }
    hit = e2e.post("/v1/jobs", key, json=body)
    assert hit.status_code == 200 and hit.json()["cache"]["hit"] == "exact", hit.text

    report = e2e.get("/v1/usage", key, params={"group_by": "tier"}).json()

    with engine.connect() as connection:
        calls = connection.execute(select(USAGE).where(USAGE.c.tenant_id == tenant_id)).mappings().all()
    engine.dispose()
    assert report["source"] == "rollup"
    totals = report["totals"]
    assert (totals["jobs"], totals["calls"], totals["cache_hits"]) == (4, len(calls), 1)
    assert totals["calls"] == 1 + 3 + 1  # the retries' failed calls count
    assert totals["cost_usd"] == pytest.approx(sum(call["cost_usd"] for call in calls))
    assert totals["prompt_tokens"] == sum(call["prompt_tokens"] for call in calls)
    assert totals["cache_savings_usd"] == pytest.approx(ended[0]["cost_usd"]) and ended[0]["cost_usd"] > 0
    tiers = {row["tier"]: row for row in report["rows"]}
    assert (tiers["small"]["jobs"], tiers["small"]["calls"], tiers["retry"]["calls"]) == (2, 1, 3)
    assert (tiers["bad"]["jobs"], tiers["bad"]["calls"], tiers["bad"]["cost_usd"]) == (1, 1, 0.0)
