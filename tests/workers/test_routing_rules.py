"""Routing by cost at submission (workers/routing_rules.py): rules, conditions, auto tiers. Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests_support import make_test_settings

from schemas.jobs import JobCreate
from schemas.settings import Settings
from schemas.spend_errors import NoTierAccepts
from workers.ratelimit.tokens import estimate_prompt_tokens
from workers.routing_rules import RequestFacts, conditions_hold, estimate_cost, route_request

SHORT = "Is this spam?"  # 3 + 4 + 4 = 11 estimated prompt tokens
LONG = "word " * 200  # 3 + 4 + 250 = 257

TIERS: dict[str, Any] = {
    # emu-a: 0.5 / 1.5 USD per million tokens; emu-b: 1.0 / 2.0; emu-retry: the same as emu-a.
    "cheap": {"models": ["emu-a"], "default_max_tokens": 100, "accepts": {"max_prompt_tokens": 100}},
    "cheap-twin": {"models": ["emu-retry"], "default_max_tokens": 100},
    "pricey": {
        "models": ["emu-b", "emu-a"],
        "default_max_tokens": 100,
        "rules": [
            {"name": "short", "tier": "cheap", "when": {"max_prompt_tokens": 50, "json_schema": False}},
            {"name": "easy", "tier": "cheap-twin", "when": {"metadata": {"task": ["classify", "extract"]}}},
            {"name": "flagged", "tier": "cheap", "when": {"metadata": {"cheap": True}}},
        ],
    },
    "vectors": {"models": ["emu-embed"], "rules": [{"name": "all", "tier": "vectors-too"}]},
    "vectors-too": {"models": ["minilm"]},
}
AUTO_TIERS = {
    "auto": {"tiers": ["pricey", "cheap"]},
    "twins": {"tiers": ["cheap-twin", "cheap"]},
    "picky": {"tiers": ["cheap"]},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings with routing rules; nothing here touches Redis or a database."""
    return make_test_settings(tmp_path, "redis://127.0.0.1:6379/9", tiers=TIERS, auto_tiers=AUTO_TIERS)


def job(tier: str, text: str = SHORT, **fields: Any) -> JobCreate:
    request = {"messages": [{"role": "user", "content": text}], **fields.pop("request", {})}
    return JobCreate.model_validate({"tier": tier, "request": request, **fields})


def test_a_short_prompt_goes_to_the_rule_tier_and_is_recorded(settings: Settings) -> None:
    routed, record = route_request(settings, job("pricey"))
    assert routed.tier == "cheap"
    assert record == {"rule": "short", "from": "pricey", "to": "cheap"}
    assert routed.request == job("pricey").request


def test_a_long_prompt_stays_on_its_tier(settings: Settings) -> None:
    routed, record = route_request(settings, job("pricey", LONG))
    assert (routed.tier, record) == ("pricey", None)


def test_the_prompt_limit_is_the_limiters_estimate_inclusive(settings: Settings) -> None:
    text = "x" * 172  # 3 + 4 + 43 = exactly 50 tokens
    assert estimate_prompt_tokens(job("pricey", text).request) == 50
    assert route_request(settings, job("pricey", text))[0].tier == "cheap"
    assert route_request(settings, job("pricey", text + "xxxx"))[0].tier == "pricey"


@pytest.mark.parametrize("kind", ["json_schema", "json_object"])
def test_a_json_request_does_not_match_a_rule_for_plain_text(settings: Settings, kind: str) -> None:
    body = job("pricey", request={"response_format": {"type": kind}})
    assert route_request(settings, body) == (body, None)


def test_a_text_response_format_is_not_json(settings: Settings) -> None:
    body = job("pricey", request={"response_format": {"type": "text"}})
    assert route_request(settings, body)[0].tier == "cheap"


def test_rules_are_tried_in_order_and_metadata_accepts_any_listed_value(settings: Settings) -> None:
    for task in ("classify", "extract"):
        routed, record = route_request(settings, job("pricey", LONG, metadata={"task": task}))
        assert (routed.tier, record) == ("cheap-twin", {"rule": "easy", "from": "pricey", "to": "cheap-twin"})
    # A short prompt matches the first rule before the metadata one.
    assert route_request(settings, job("pricey", metadata={"task": "classify"}))[1]["rule"] == "short"  # type: ignore[index]


@pytest.mark.parametrize("metadata", [{}, {"task": "summarise"}, {"task": ["classify"]}, {"cheap": 1}])
def test_metadata_that_is_missing_or_other_does_not_match(
    settings: Settings, metadata: dict[str, Any]
) -> None:
    assert route_request(settings, job("pricey", LONG, metadata=metadata))[0].tier == "pricey"


def test_a_boolean_metadata_value_matches_only_a_boolean(settings: Settings) -> None:
    assert route_request(settings, job("pricey", LONG, metadata={"cheap": True}))[0].tier == "cheap"


def test_a_request_naming_its_model_is_not_routed(settings: Settings) -> None:
    body = job("pricey", request={"model": "emu-b"})
    assert route_request(settings, body) == (body, None)


def test_unknown_tiers_and_tiers_without_rules_pass_through(settings: Settings) -> None:
    for tier in ("cheap", "no-such-tier"):
        body = job(tier)
        assert route_request(settings, body) == (body, None)


def test_a_routed_tiers_own_rules_are_not_applied_again(settings: Settings) -> None:
    settings.tiers["cheap"].rules = settings.tiers["pricey"].rules[:1]  # would send back to itself
    settings.tiers["cheap"].rules[0] = settings.tiers["cheap"].rules[0].model_copy(update={"tier": "pricey"})
    assert route_request(settings, job("pricey"))[0].tier == "cheap"


def test_embedding_jobs_route_by_their_inputs(settings: Settings) -> None:
    body = JobCreate.model_validate(
        {"tier": "vectors", "kind": "embedding", "request": {"input": ["a", "b"]}}
    )
    routed, record = route_request(settings, body)
    assert (routed.tier, record) == ("vectors-too", {"rule": "all", "from": "vectors", "to": "vectors-too"})


def test_auto_picks_the_cheapest_accepting_tier_and_records_each_estimate(settings: Settings) -> None:
    routed, record = route_request(settings, job("auto"))
    assert routed.tier == "cheap"
    assert record is not None and (record["rule"], record["from"], record["to"]) == ("auto", "auto", "cheap")
    # 11 prompt tokens, 100 default max tokens: emu-b 11 * 1.0 + 100 * 2.0; emu-a 11 * 0.5 + 100 * 1.5.
    assert record["candidates"] == [
        {"tier": "pricey", "accepts": True, "estimated_cost_usd": pytest.approx(211e-6)},
        {"tier": "cheap", "accepts": True, "estimated_cost_usd": pytest.approx(155.5e-6)},
    ]


def test_auto_skips_a_cheaper_tier_that_does_not_accept(settings: Settings) -> None:
    routed, record = route_request(settings, job("auto", LONG))
    assert routed.tier == "pricey"
    assert record is not None and [c["accepts"] for c in record["candidates"]] == [True, False]


def test_auto_estimates_with_the_requests_max_tokens(settings: Settings) -> None:
    body = job("auto", request={"max_tokens": 10})
    assert estimate_cost(settings, "cheap", body, 11) == pytest.approx((11 * 0.5 + 10 * 1.5) * 1e-6)


def test_auto_ties_keep_the_listed_order(settings: Settings) -> None:
    assert route_request(settings, job("twins"))[0].tier == "cheap-twin"
    settings.auto_tiers["twins"].tiers.reverse()
    assert route_request(settings, job("twins"))[0].tier == "cheap"


def test_auto_refuses_when_no_candidate_accepts(settings: Settings) -> None:
    with pytest.raises(NoTierAccepts) as raised:
        route_request(settings, job("picky", LONG))
    assert raised.value.status_code == 400 and raised.value.code == "no_tier_accepts"
    assert raised.value.details["auto_tier"] == "picky"
    assert "'picky'" in raised.value.message
    assert raised.value.details["candidates"][0]["accepts"] is False


def test_auto_with_a_named_model_considers_only_tiers_serving_it(settings: Settings) -> None:
    assert route_request(settings, job("auto", request={"model": "emu-b"}))[0].tier == "pricey"
    with pytest.raises(NoTierAccepts):
        route_request(settings, job("picky", request={"model": "emu-b"}))


def test_empty_conditions_always_hold() -> None:
    from schemas.catalog import RouteConditions

    facts = RequestFacts(prompt_tokens=10_000, json_schema=True, metadata={})
    assert conditions_hold(RouteConditions.model_validate({}), facts)
    assert not conditions_hold(RouteConditions.model_validate({"min_prompt_tokens": 10_001}), facts)
    assert conditions_hold(RouteConditions.model_validate({"min_prompt_tokens": 10_000}), facts)
