"""What a dead worker's attempt may have cost: its attempt-log entry and usage row, estimated.

The worker died without a word, so whether its attempt reached the provider, and what the
provider billed, is unknown. The attempt is counted as a call that may have been billed, at
the most it could have cost (docs/operations.md, "When a worker dies"):

- model: the one routing gives that attempt, the first of the tier's chain still worth a try
  (a rate-limit fallback may have sent the call to another; that is not visible afterwards);
- prompt tokens: the estimate the rate limiter reserves (workers/ratelimit/tokens.py), at or
  above what the provider counts for English text;
- completion tokens: the request's ``max_tokens``, else the tier's ``default_max_tokens`` (none
  for embeddings), the most the provider could have generated;
- cost: those tokens at the model's prices.

The entry carries ``"estimated": true``. Its ``latency_ms`` is how long the worker was seen
holding the job: from the claim to the last renewal of its lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from schemas.jobs import parse_request
from schemas.openai import ChatRequest, CompletionUsage
from schemas.settings import ModelConfig, Settings
from schemas.tables import Usage
from workers.middleware.routing import next_model
from workers.middleware.usage import call_cost_usd, usage_row
from workers.ratelimit.tokens import estimate_prompt_tokens

LOST_OUTCOME = "worker_lost"
UNKNOWN = "unknown"  # the model and provider of an attempt whose tier left the config


def lost_attempt(settings: Settings, row: Mapping[Any, Any]) -> tuple[dict[str, Any], Usage]:
    """The attempt-log entry and usage row of the running job ``row``'s lost attempt."""
    alias, model, prompt, completion = _upper_bound(settings, row)
    cost = 0.0
    if model is not None:
        total = prompt + completion
        tokens = CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)
        cost = round(call_cost_usd(model, tokens), 8)
    entry = {
        "attempt": row["attempts"],
        "model": alias,
        "provider": model.provider if model is not None else UNKNOWN,
        "outcome": LOST_OUTCOME,
        "latency_ms": _held_ms(settings, row),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": cost,
        "estimated": True,
    }
    return entry, usage_row(row["id"], row["tenant_id"], row["tier"], entry)


def _upper_bound(settings: Settings, row: Mapping[Any, Any]) -> tuple[str, ModelConfig | None, int, int]:
    """The attempt's model alias and config, and the most prompt and completion tokens it used."""
    tier = settings.tiers.get(row["tier"])
    if tier is None:
        return UNKNOWN, None, 0, 0
    try:
        request = parse_request(row["kind"], row["request"])
    except ValueError:  # a stored body today's schema refuses: the run will fail it; price nothing
        return UNKNOWN, None, 0, 0
    alias = next_model(tier, request.model, row["attempt_log"] or [])
    if alias is None or alias not in settings.models:  # routing would have failed it: no call
        return alias or UNKNOWN, None, 0, 0
    completion = request.requested_max_tokens() or 0
    if isinstance(request, ChatRequest) and not completion:
        completion = tier.default_max_tokens
    return alias, settings.models[alias], estimate_prompt_tokens(request), completion


def _held_ms(settings: Settings, row: Mapping[Any, Any]) -> float:
    started, expires = row["started_at"], row["lease_expires_at"]
    if started is None or expires is None:
        return 0.0
    last_renewal = expires - timedelta(seconds=settings.lease_s)
    return round(max((last_renewal - started).total_seconds(), 0.0) * 1000, 2)
