"""The catalog of the TOML config: provider endpoints, model aliases with their prices, tiers
with their routing rules, and auto tiers.

``Settings`` (schemas/settings.py) holds one table of each, keyed by name, and checks that
the names they use refer to each other (:func:`check_routing` for the routing rules).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from schemas.slo import SloObjectives

# OpenAI's Batch API costs half its live price; a model without batch prices assumes the same.
BATCH_DISCOUNT = 0.5


# A metadata condition accepts one value or any of a list; values are JSON scalars.
MetadataValue = str | int | float | bool
AUTO_RULE = "auto"  # the rule name an auto tier's choice is recorded under


class RouteConditions(BaseModel):
    """Conditions on a request, all of which must hold: a rule's ``when`` or a tier's ``accepts``
    (docs/spend.md, Routing by cost). Prompt tokens are the limiter's estimate."""

    model_config = ConfigDict(extra="forbid")

    min_prompt_tokens: int | None = Field(None, ge=0)
    max_prompt_tokens: int | None = Field(None, ge=0)
    json_schema: bool | None = Field(
        None, description="Whether the request asks for JSON (response_format json_schema or json_object)."
    )
    metadata: dict[str, MetadataValue | list[MetadataValue]] = Field(
        default_factory=dict, description="Job metadata key -> the value, or the list of values, accepted."
    )

    @model_validator(mode="after")
    def _check_range(self) -> RouteConditions:
        low, high = self.min_prompt_tokens, self.max_prompt_tokens
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_prompt_tokens ({low}) is above max_prompt_tokens ({high})")
        return self


class RouteRule(BaseModel):
    """Send a job of this tier to ``tier`` when every condition of ``when`` holds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    tier: str = Field(min_length=1)
    when: RouteConditions = Field(default_factory=lambda: RouteConditions.model_validate({}))


class ProviderConfig(BaseModel):
    """One provider endpoint; ``kind`` picks the adapter from the registry."""

    kind: Literal["openai", "local"]
    base_url: str | None = None
    api_key: SecretStr = SecretStr("not-needed")
    timeout_s: float = Field(60.0, gt=0)
    max_batch_size: int = Field(
        1,
        ge=1,
        le=256,
        description="Calls of one model a local provider runs as one batch (worker-batching).",
    )
    max_batch_wait_ms: float = Field(
        20.0, ge=0, le=10_000, description="How long a batch waits for more calls after its first arrived."
    )
    prefix_cache_blocks: int = Field(
        128,
        ge=0,
        le=65_536,
        description="A local chat model keeps this many 16-token blocks of prompt openings it has "
        "seen, to skip running them again; 0 turns the prefix cache off (docs/worker-batching.md).",
    )
    prefill_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="A local chat model reads prompts in this precision; auto = bfloat16 on CPUs "
        "with AMX, where prefill runs about twice as fast (decoding stays float32).",
    )
    batch_api: bool = Field(
        False, description="Batch-lane 24h jobs go through its Batch API (docs/provider-batches.md)."
    )


class ModelConfig(BaseModel):
    """A model alias: which provider serves it, under which name, at what price."""

    provider: str
    model: str
    kind: Literal["chat", "embedding"] = Field("chat", description="The kind of job the model serves.")
    input_usd_per_mtok: float = Field(0.0, ge=0)
    output_usd_per_mtok: float = Field(0.0, ge=0)
    context_window: int = Field(8192, gt=0)
    rpm: int | None = Field(None, gt=0, description="Requests per rate-limit window; none = unlimited.")
    tpm: int | None = Field(None, gt=0, description="Tokens per rate-limit window; none = unlimited.")
    max_concurrency: int | None = Field(None, gt=0, description="Calls in flight at once.")
    batch_input_usd_per_mtok: float | None = Field(
        None, ge=0, description="Price through the provider's Batch API; none = half the live price."
    )
    batch_output_usd_per_mtok: float | None = Field(None, ge=0)
    dimensions: int | None = Field(None, gt=0, description="Vector length of an embedding model.")

    def batch_prices(self) -> tuple[float, float]:
        """USD per million input and output tokens through the provider's Batch API."""
        input_price = self.batch_input_usd_per_mtok
        output_price = self.batch_output_usd_per_mtok
        return (
            self.input_usd_per_mtok * BATCH_DISCOUNT if input_price is None else input_price,
            self.output_usd_per_mtok * BATCH_DISCOUNT if output_price is None else output_price,
        )

    @property
    def bucket(self) -> str:
        """The rate-limit bucket: aliases of one provider model share its limits."""
        return f"{self.provider}/{self.model}"


class TierConfig(BaseModel):
    """A tier: the ordered fallback chain of model aliases and its defaults."""

    models: list[str] = Field(min_length=1)
    default_max_tokens: int = Field(256, gt=0)
    attempts_per_model: int = Field(2, ge=1)
    max_queue_seconds: float = Field(
        300.0, gt=0, description="Refuse new live jobs while the live queue needs longer to drain."
    )
    max_queue_depth: int = Field(100_000, gt=0, description="Refuse every job once this many are queued.")
    fallback_on_exhaustion: bool = Field(
        True, description="Move a job to the next model of the chain when its model has no capacity."
    )
    cache: Literal["exact", "semantic", "off"] = Field(
        "exact", description="Cache mode of jobs that do not choose one (docs/caching.md)."
    )
    cache_ttl_s: int = Field(86_400, gt=0, description="Lifetime of a cached result unless the job sets one.")
    rules: list[RouteRule] = Field(
        default_factory=list,
        description="Tried in order at submission; the first whose `when` holds sends the job to its tier.",
    )
    accepts: RouteConditions | None = Field(
        None, description="What this tier can take when an auto tier considers it; none: everything."
    )
    slo: SloObjectives | None = Field(
        None, description="Latency and error-rate objectives GET /v1/slo reports (docs/observability.md)."
    )


class AutoTierConfig(BaseModel):
    """A name jobs may use as their tier: each job goes to the cheapest candidate that accepts
    it. It has no queue, cache or workers of its own."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[str] = Field(min_length=1, description="Candidate tiers; ties keep this order.")


def check_routing(
    tiers: dict[str, TierConfig], auto_tiers: dict[str, AutoTierConfig], kinds: dict[str, str]
) -> None:
    """Refuse routing that could not work: a rule or an auto tier naming an unknown tier, one of
    another kind (chat/embedding), a rule to its own tier, an auto tier named like a tier.
    ``kinds``: each tier's kind."""
    for name, tier in tiers.items():
        seen: set[str] = set()
        for rule in tier.rules:
            where = f"tier {name!r} rule {rule.name!r}"
            if rule.name in seen or rule.name == AUTO_RULE:
                raise ValueError(f"{where}: rule names must be unique in a tier and not {AUTO_RULE!r}")
            seen.add(rule.name)
            if rule.tier == name:
                raise ValueError(f"{where} routes to its own tier")
            _check_target(where, rule.tier, kinds[name], kinds, auto_tiers)
    for name, auto in auto_tiers.items():
        if name in tiers:
            raise ValueError(f"auto tier {name!r} has the name of a tier; rename one of them")
        if len(set(auto.tiers)) != len(auto.tiers):
            raise ValueError(f"auto tier {name!r} lists a candidate twice")
        for candidate in auto.tiers:
            _check_target(f"auto tier {name!r}", candidate, kinds.get(auto.tiers[0]), kinds, auto_tiers)


def _check_target(
    where: str, target: str, kind: str | None, kinds: dict[str, str], auto_tiers: dict[str, AutoTierConfig]
) -> None:
    if target in auto_tiers:
        raise ValueError(f"{where} names auto tier {target!r}; name one of the tiers it picks from")
    if target not in kinds:
        raise ValueError(f"{where} names unknown tier {target!r}; known tiers: {', '.join(kinds)}")
    if kinds[target] != kind:
        raise ValueError(f"{where} names tier {target!r} of kind {kinds[target]!r}, not {kind!r}")
