"""Routing by cost at submission: a tier's rules and auto tiers pick the tier a job runs on.

"Use the smallest model that works." Rules are configuration (``[[tiers.<name>.rules]]``,
``[auto_tiers.<name>]``, schemas/catalog.py), checked here against facts of the request:
its estimated prompt tokens (the limiter's estimate, workers/ratelimit/tokens.py), whether it
asks for JSON, and the job's metadata. This runs in the API before the job's checks, because
the job must be checked, cached and queued on the tier it will run on; the worker's routing
(workers/middleware/routing.py) then walks that tier's fallback chain as for any job.

Rules apply once: the tier a rule or an auto tier picks is not routed again, so routing can
never loop. A request that names a ``model`` chose its model itself and is not routed by rules;
an auto tier then considers only the candidates that serve that model. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.catalog import AUTO_RULE, AutoTierConfig, MetadataValue, RouteConditions
from schemas.jobs import JobCreate
from schemas.openai import ChatRequest
from schemas.settings import Settings
from schemas.spend_errors import NoTierAccepts
from workers.ratelimit.tokens import estimate_prompt_tokens

JSON_FORMATS = frozenset({"json_schema", "json_object"})
PER_TOKEN = 1e-6  # prices are USD per million tokens


@dataclass(frozen=True)
class RequestFacts:
    """What conditions look at, computed once per request."""

    prompt_tokens: int
    json_schema: bool
    metadata: dict[str, Any]

    @classmethod
    def of(cls, body: JobCreate) -> RequestFacts:
        request = body.request
        response_format = request.response_format if isinstance(request, ChatRequest) else None
        wants_json = isinstance(response_format, dict) and response_format.get("type") in JSON_FORMATS
        return cls(estimate_prompt_tokens(request), wants_json, body.metadata)


def route_request(settings: Settings, body: JobCreate) -> tuple[JobCreate, dict[str, Any] | None]:
    """The job with the tier it runs on, and the record of the rule that chose it (None when
    its tier's rules all pass it by). Tiers unknown here are left to ``check_job`` to refuse."""
    auto = settings.auto_tiers.get(body.tier)
    if auto is not None:
        return _route_auto(settings, body, auto)
    tier = settings.tiers.get(body.tier)
    if tier is None or not tier.rules or body.request.model is not None:
        return body, None
    facts = RequestFacts.of(body)
    for rule in tier.rules:
        if conditions_hold(rule.when, facts):
            record = {"rule": rule.name, "from": body.tier, "to": rule.tier}
            return body.model_copy(update={"tier": rule.tier}), record
    return body, None


def conditions_hold(conditions: RouteConditions, facts: RequestFacts) -> bool:
    """Whether every condition holds for the request (an empty set always holds)."""
    low, high = conditions.min_prompt_tokens, conditions.max_prompt_tokens
    if low is not None and facts.prompt_tokens < low:
        return False
    if high is not None and facts.prompt_tokens > high:
        return False
    if conditions.json_schema is not None and conditions.json_schema != facts.json_schema:
        return False
    return all(
        key in facts.metadata and _accepted(facts.metadata[key], wanted)
        for key, wanted in conditions.metadata.items()
    )


def estimate_cost(settings: Settings, tier_name: str, body: JobCreate, prompt_tokens: int) -> float:
    """USD the request would cost on the tier's first model: estimated prompt tokens at its
    input price, plus the most it may generate (``max_tokens`` or the tier's default)."""
    tier = settings.tiers[tier_name]
    model = settings.models[tier.models[0]]
    completion = body.request.requested_max_tokens() or tier.default_max_tokens
    if body.kind == "embedding":  # embeddings generate nothing
        completion = 0
    dollars = prompt_tokens * model.input_usd_per_mtok + completion * model.output_usd_per_mtok
    return dollars * PER_TOKEN


def _route_auto(
    settings: Settings, body: JobCreate, auto: AutoTierConfig
) -> tuple[JobCreate, dict[str, Any]]:
    """The cheapest candidate whose ``accepts`` hold; ties keep the listed order."""
    facts = RequestFacts.of(body)
    pinned = body.request.model
    candidates: list[dict[str, Any]] = []
    for name in auto.tiers:
        tier = settings.tiers[name]
        accepts = tier.accepts is None or conditions_hold(tier.accepts, facts)
        if pinned is not None and pinned not in tier.models:
            accepts = False
        cost = round(estimate_cost(settings, name, body, facts.prompt_tokens), 10)
        candidates.append({"tier": name, "accepts": accepts, "estimated_cost_usd": cost})
    accepting = [candidate for candidate in candidates if candidate["accepts"]]
    if not accepting:
        raise NoTierAccepts(
            f"No tier of auto tier {body.tier!r} accepts this request (about {facts.prompt_tokens} "
            f"prompt tokens, json_schema {str(facts.json_schema).lower()}); candidates: "
            f"{', '.join(auto.tiers)}. Name a tier instead, or shorten the request.",
            auto_tier=body.tier,
            candidates=candidates,
        )
    chosen = min(accepting, key=lambda candidate: candidate["estimated_cost_usd"])  # first of equals
    record = {"rule": AUTO_RULE, "from": body.tier, "to": chosen["tier"], "candidates": candidates}
    return body.model_copy(update={"tier": chosen["tier"]}), record


def _accepted(value: Any, wanted: MetadataValue | list[MetadataValue]) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    # True == 1 in Python; a metadata flag and a count are different answers here.
    return any(value == option and isinstance(value, bool) == isinstance(option, bool) for option in options)
