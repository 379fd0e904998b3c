"""Usage reports end to end: jobs run by real workers against the emulator (a success, retries
after 503s, a permanent failure, an exact-cache hit); ``GET /v1/usage`` then shows what the jobs
and their usage rows add up to, from the rollups the workers wrote as the calls settled."""

from __future__ import annotations

import pytest
from e2e_stack import Stack, settle_a_mix


def test_the_report_adds_up_what_the_workers_settled(e2e: Stack) -> None:
    mix = settle_a_mix(e2e, "usage")
    key, ended, calls = mix.key, mix.ended, mix.usage

    report = e2e.get("/v1/usage", key, params={"group_by": "tier"}).json()

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
