"""What a call may cost at most, before it is made, in the ledger's integer units.

The prompt is estimated as the rate limiter estimates it (the adapter's
``estimate_prompt_tokens``: the local model counts with its tokenizer, remote models at one
token per 4 bytes, workers/ratelimit/tokens.py), the completion at its ``max_tokens``; both
priced at the routed model's prices, the Batch API's on the provider batch lane. Redis holds
nano-dollars (integers), never floats, so sums are exact in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.openai import ChatRequest, EmbeddingRequest
from workers.chain import Route

NANO = 1_000_000_000  # nano-dollars per dollar: the ledger's unit of money


@dataclass(frozen=True)
class Charge:
    """An amount against budgets: nano-dollars and tokens."""

    nano_usd: int
    tokens: int

    @property
    def usd(self) -> float:
        return self.nano_usd / NANO


NOTHING = Charge(0, 0)


def to_nano(usd: float) -> int:
    """Dollars as nano-dollars, rounded to the nearest (a price sum is exact to far below that)."""
    return round(usd * NANO)


def max_charge(route: Route, request: ChatRequest | EmbeddingRequest, prompt_tokens: int) -> Charge:
    """The most the call may cost: ``prompt_tokens`` plus its ``max_tokens`` at ``route``'s prices."""
    completion = 0 if isinstance(request, EmbeddingRequest) else (request.requested_max_tokens() or 0)
    model = route.model
    input_price, output_price = (
        model.batch_prices()
        if route.provider_batch is not None
        else (model.input_usd_per_mtok, model.output_usd_per_mtok)
    )
    # Rounded up: the reservation must cover the call, so a fraction of a nano-dollar counts.
    nano = math.ceil((prompt_tokens * input_price + completion * output_price) * NANO / 1_000_000)
    return Charge(nano, prompt_tokens + completion)


def actual_charge(cost_usd: float, prompt_tokens: int, completion_tokens: int) -> Charge:
    """What a call cost, as the usage table records it."""
    return Charge(to_nano(cost_usd), prompt_tokens + completion_tokens)
