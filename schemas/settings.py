"""Settings: one object, from ``SWITCHYARD_*`` environment variables and a TOML file.

The TOML file (``infra/switchyard.toml`` by default, ``SWITCHYARD_CONFIG_FILE`` to change)
holds providers, models, tiers and prices; environment variables override scalar fields.
Build it with :func:`load_settings` and pass it in; nothing imports a global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "infra" / "switchyard.toml"
# Priority classes, highest first. Each has its own queue per tier; live is consumed first.
PRIORITIES = ("live", "batch", "precompute")
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


class CacheSettings(BaseModel):
    """The semantic cache's matching (docs/caching.md)."""

    semantic_threshold: float = Field(
        0.85, gt=0, le=1, description="Cosine similarity a cached question needs, before the guards."
    )


HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


class PrecomputeSettings(BaseModel):
    """Known queries: when beat precomputes them (docs/caching.md)."""

    default_window_start: str = Field(
        "01:00", pattern=HHMM_PATTERN, description="Local off-peak window of a query that sets none."
    )
    default_window_end: str = Field("05:00", pattern=HHMM_PATTERN)
    default_timezone: str = Field("UTC", description="IANA time zone of a query that sets none.")
    refresh_margin: float = Field(
        0.1, gt=0, lt=1, description="Refresh a precomputed answer when this share of its TTL is left."
    )
    scan_interval_s: float = Field(60.0, gt=0, description="Beat period of the scan for due known queries.")

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {name!r}") from exc
        return name


class ProviderBatchSettings(BaseModel):
    """The provider Batch API lane: grouping, flushing and polling (docs/provider-batches.md)."""

    max_lines: int = Field(10_000, gt=0, le=50_000, description="Jobs per provider batch (OpenAI: 50,000).")
    max_bytes: int = Field(
        100_000_000, gt=0, le=200_000_000, description="Input file size per provider batch (OpenAI: 200 MB)."
    )
    max_wait_s: float = Field(300.0, gt=0, description="A batch is sent this long after its first job.")
    poll_interval_s: float = Field(30.0, gt=0, description="Beat period of the send-and-poll pass.")
    resend_after_s: float = Field(
        600.0, gt=0, description="A send or merge left unfinished this long (a crash) is taken up again."
    )
    max_send_attempts: int = Field(3, gt=0, description="Failed sends before the jobs run individually.")
    lane_lease_s: int = Field(
        93_600, gt=86_400, description="Lease of a job waiting in the lane; above the 24 h window."
    )


class RateLimitSettings(BaseModel):
    """How workers share provider limits and how the API admits work (docs/rate-limits.md)."""

    window_s: float = Field(60.0, gt=0, description="Length of every limit window; tests compress it.")
    window_margin_s: float = Field(
        0.05,
        ge=0,
        description="Added to provider windows: a call reaches the provider a little after its grant.",
    )
    acquire_wait_s: float = Field(
        2.0, ge=0, description="Longest a worker waits for capacity before it hands the job back."
    )
    batch_reserve: float = Field(0.2, ge=0, lt=1, description="Share of each limit batch leaves for live.")
    precompute_reserve: float = Field(
        0.5, ge=0, lt=1, description="Share of each limit precompute leaves for the other classes."
    )
    adaptive: bool = Field(True, description="AIMD: a 429 without headers shrinks the limits in force.")
    aimd_decrease: float = Field(0.5, gt=0, lt=1)
    aimd_min_factor: float = Field(0.1, gt=0, le=1)
    aimd_recovery_per_window: float = Field(0.1, gt=0, le=1)
    aimd_cooldown_s: float = Field(1.0, ge=0, description="One decrease per burst of 429s.")
    tenant_rpm: int = Field(600, gt=0, description="Job submissions per tenant per tenant window.")
    tenant_window_s: float = Field(60.0, gt=0)
    tenant_max_running: int = Field(32, gt=0, description="Running jobs per tenant at once.")
    tenant_retry_s: float = Field(1.0, gt=0, description="Hand-back delay of a job over its tenant's cap.")

    def reserve(self, priority: str) -> float:
        """The share of each limit a call of this priority class must leave unused."""
        return {"live": 0.0, "batch": self.batch_reserve, "precompute": self.precompute_reserve}[priority]


class WebhookSettings(BaseModel):
    """Signed webhook deliveries: retries, timeouts and the SSRF guard (docs/webhooks.md)."""

    retry_schedule_s: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        description="Delay before each attempt; the first is normally 0 (immediately). Tests compress it.",
    )
    jitter: float = Field(0.1, ge=0, lt=1, description="Each retry delay varies by up to this share.")
    connect_timeout_s: float = Field(15.0, gt=0)
    read_timeout_s: float = Field(15.0, gt=0)
    sweep_interval_s: float = Field(1.0, gt=0, description="Beat period of the sweep for due retries.")
    claim_s: float = Field(
        60.0, gt=0, description="An attempt not finished this long after it was claimed is tried again."
    )
    rotation_grace_s: float = Field(
        86_400.0, ge=0, description="How long a rotated-out secret still signs (both signatures sent)."
    )
    disable_after_failing_s: float = Field(
        5 * 86_400.0, gt=0, description="An endpoint failing continuously this long is disabled."
    )
    by_reference_bytes: int = Field(
        256_000, gt=0, description="Payloads larger than this carry a URL to fetch the object instead."
    )
    endpoint_cache_s: int = Field(60, gt=0, description="Redis lifetime of a tenant's cached endpoint list.")
    repair_after_s: float = Field(
        60.0,
        ge=0,
        description="The reconciler sends the webhooks of a job that ended this long ago without any "
        "(a crash between its final state and its deliveries).",
    )
    repair_lookback_s: float = Field(
        3600.0,
        gt=0,
        description="How far back the first repair pass (or one after Redis lost its mark) looks.",
    )
    max_endpoints_per_tenant: int = Field(50, gt=0)
    first_attempt: Literal["in_process", "queue"] = Field(
        "queue",
        description="Who makes a delivery's first attempt: a sender thread of the process that "
        "announced the event (fastest), or a webhook worker through the webhook queue.",
    )
    sender_threads: int = Field(4, gt=0, description="Sender threads per announcing process (in_process).")
    sender_backlog: int = Field(
        64, gt=0, description="First attempts waiting for a sender thread before more go to the queue."
    )
    require_https: bool = Field(False, description="Refuse http:// endpoints and callback URLs.")
    allow_loopback: bool = Field(
        False, description="Test-only: let loopback addresses through the SSRF guard. Off in production."
    )

    @field_validator("retry_schedule_s")
    @classmethod
    def _non_negative(cls, delays: list[float]) -> list[float]:
        if any(delay < 0 for delay in delays):
            raise ValueError("retry delays must be >= 0")
        return delays


class StreamingSettings(BaseModel):
    """The tenant event stream and token streaming (docs/streaming.md)."""

    event_retention_s: int = Field(86_400, gt=0, description="How far back GET /v1/events can resume.")
    event_max_per_tenant: int = Field(
        100_000, gt=0, description="Cap on a tenant's retained events, trimmed approximately."
    )
    keepalive_s: float = Field(15.0, gt=0, description="An idle SSE stream sends a comment this often.")
    retry_ms: int = Field(3_000, gt=0, description="The SSE `retry:` hint: how soon a client reconnects.")
    token_ttl_s: int = Field(600, gt=0, description="How long a job's streamed tokens stay readable.")
    max_stream_s: float = Field(
        3_600.0, gt=0, description="An SSE connection ends after this long; clients reconnect and rebalance."
    )


class Settings(BaseSettings):
    """Every setting of Switchyard, process-wide, passed in explicitly."""

    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", env_nested_delimiter="__", extra="ignore")

    config_file: Path = DEFAULT_CONFIG_FILE
    var_dir: Path = PROJECT_ROOT / "var"
    model_dir: Path | None = Field(None, description="Converted local weights; default <var_dir>/models.")
    database_url: str = Field(
        "",
        validation_alias=AliasChoices("SWITCHYARD_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; empty means SQLite at <var_dir>/switchyard.db.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("SWITCHYARD_REDIS_URL", "REDIS_URL", "redis_url"),
    )
    api_url: str = "http://127.0.0.1:8000"
    emulator_port: int | None = Field(8090, description="`switchyard up` starts the emulator here.")
    key_prefix: str = Field("switchyard", description="Prefix of every Redis key and queue.")

    # Input limits checked at the API boundary.
    max_body_bytes: int = 1_000_000
    max_messages: int = 256
    max_content_chars: int = 200_000
    max_tokens_limit: int = 32_768
    max_metadata_bytes: int = 16_384
    max_embedding_inputs: int = Field(2048, gt=0, description="Texts in one embedding job.")
    max_batch_bytes: int = Field(200_000_000, gt=0, description="Batch and file uploads (OpenAI: 200 MB).")
    max_batch_lines: int = Field(50_000, gt=0, description="Lines in one batch (OpenAI: 50,000).")
    idempotency_ttl_s: int = 86_400
    max_wait_s: float = 60.0
    api_job_threads: int = Field(
        4,
        gt=0,
        description="Threads that run job submissions and reads in each API process (docs/performance.md).",
    )

    # Reliability: soft < hard < visibility, lease just above hard.
    provider_timeout_s: float = 60.0
    task_soft_time_limit_s: int = 120
    task_time_limit_s: int = 150
    visibility_timeout_s: int = 3_600
    lease_s: int = 180
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_short_wait_s: float = Field(
        30.0, gt=0, description="Retries due sooner wait in Redis; later ones on the row for the reconciler."
    )
    task_events: bool = Field(False, description="Send Celery task events (Flower turns them on anyway).")
    reconcile_interval_s: float = 10.0
    orphan_grace_s: float = 15.0
    republish_after_s: float = 3_600.0
    inject_faults: set[str] = Field(
        default_factory=set,
        description="Test-only fault injection, e.g. {'skip_publish_after_commit'}; empty in production.",
    )

    rate_limits: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings.model_validate({}))
    cache: CacheSettings = Field(default_factory=lambda: CacheSettings.model_validate({}))
    precompute: PrecomputeSettings = Field(default_factory=lambda: PrecomputeSettings.model_validate({}))
    streaming: StreamingSettings = Field(default_factory=lambda: StreamingSettings.model_validate({}))
    provider_batches: ProviderBatchSettings = Field(
        default_factory=lambda: ProviderBatchSettings.model_validate({})
    )
    webhooks: WebhookSettings = Field(default_factory=lambda: WebhookSettings.model_validate({}))
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    tiers: dict[str, TierConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file_from(init_settings, env_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        for alias, model in self.models.items():
            if model.provider not in self.providers:
                raise ValueError(f"model {alias!r} names unknown provider {model.provider!r}")
        for name, tier in self.tiers.items():
            for alias in tier.models:
                if alias not in self.models:
                    raise ValueError(f"tier {name!r} names unknown model {alias!r}")
            if len({self.models[alias].kind for alias in tier.models}) > 1:
                raise ValueError(f"tier {name!r} mixes chat and embedding models")
        if not self.task_soft_time_limit_s < self.task_time_limit_s < self.visibility_timeout_s:
            raise ValueError("need task_soft_time_limit_s < task_time_limit_s < visibility_timeout_s")
        if self.lease_s <= self.task_time_limit_s:
            raise ValueError("lease_s must exceed task_time_limit_s so a live task keeps its lease")
        if self.rate_limits.precompute_reserve < self.rate_limits.batch_reserve:
            raise ValueError("rate_limits.precompute_reserve must be at least batch_reserve")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to the SQLite file under ``var_dir``."""
        if not self.database_url:
            return f"sqlite:///{self.var_dir / 'switchyard.db'}"
        if self.database_url.startswith("postgresql://"):
            return "postgresql+psycopg://" + self.database_url.removeprefix("postgresql://")
        return self.database_url

    def tier_kind(self, tier: str) -> str:
        """The kind of job a tier serves: that of its models (a tier never mixes kinds)."""
        return self.models[self.tiers[tier].models[0]].kind

    def queue_names(self) -> list[str]:
        """Every Celery queue: one per tier and priority."""
        return [queue_name(tier, priority) for tier in self.tiers for priority in PRIORITIES]


def queue_name(tier: str, priority: str) -> str:
    """The Celery queue of a tier and priority, e.g. ``tier.small.live``."""
    return f"tier.{tier}.{priority}"


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path:
    for source in sources:
        value = source().get("config_file")
        if value:
            return Path(value)
    return DEFAULT_CONFIG_FILE


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the TOML file, with ``overrides`` on top."""
    return Settings(**overrides)
