"""The catalog of the TOML config: provider endpoints, model aliases with their prices, and tiers.

``Settings`` (schemas/settings.py) holds one table of each, keyed by name, and checks that
the names they use refer to each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

# OpenAI's Batch API costs half its live price; a model without batch prices assumes the same.
BATCH_DISCOUNT = 0.5


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
