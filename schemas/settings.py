"""Settings: one object, from ``SWITCHYARD_*`` environment variables and a TOML file.

The TOML file (``infra/switchyard.toml`` by default, ``SWITCHYARD_CONFIG_FILE`` to change)
holds providers, models, tiers and prices; environment variables override scalar fields.
Build it with :func:`load_settings` and pass it in; nothing imports a global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The sections and the catalog live in modules of their own; importers keep using these names.
from schemas.catalog import (
    BATCH_DISCOUNT,
    AutoTierConfig,
    ModelConfig,
    ProviderConfig,
    TierConfig,
    check_routing,
)
from schemas.sections import (
    CacheSettings,
    MetricsSettings,
    PrecomputeSettings,
    ProviderBatchSettings,
    RateLimitSettings,
    StreamingSettings,
    WebhookSettings,
)

__all__ = [
    "BATCH_DISCOUNT",
    "DEFAULT_CONFIG_FILE",
    "PRIORITIES",
    "PROJECT_ROOT",
    "AutoTierConfig",
    "CacheSettings",
    "MetricsSettings",
    "ModelConfig",
    "PrecomputeSettings",
    "ProviderBatchSettings",
    "ProviderConfig",
    "RateLimitSettings",
    "Settings",
    "StreamingSettings",
    "TierConfig",
    "WebhookSettings",
    "load_settings",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "infra" / "switchyard.toml"
# Priority classes, highest first. Each has its own queue per tier (workers/keys.py); live is
# consumed first.
PRIORITIES = ("live", "batch", "precompute")


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
    api_key: SecretStr | None = Field(
        None,
        description="The key CLI commands send to the API at api_url; unset or empty: the demo key.",
    )
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

    # Reliability: soft < hard < visibility. A running job's lease is short and renewed by its
    # worker's heartbeat, so a dead worker's jobs run again within lease_s + reconcile_interval_s
    # (about 30 s) whatever the length of the call (docs/operations.md).
    provider_timeout_s: float = 60.0
    task_soft_time_limit_s: int = 120
    task_time_limit_s: int = 150
    visibility_timeout_s: int = 3_600
    lease_s: int = Field(20, gt=0, description="A running job's lease, renewed by its worker's heartbeat.")
    lease_heartbeat_s: float = Field(5.0, gt=0, description="How often a worker renews its jobs' leases.")
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
    metrics: MetricsSettings = Field(default_factory=lambda: MetricsSettings.model_validate({}))
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    tiers: dict[str, TierConfig] = Field(default_factory=dict)
    auto_tiers: dict[str, AutoTierConfig] = Field(
        default_factory=dict, description="Names that route each job to the cheapest accepting tier."
    )

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
        check_routing(self.tiers, self.auto_tiers, {name: self.tier_kind(name) for name in self.tiers})
        if not self.task_soft_time_limit_s < self.task_time_limit_s < self.visibility_timeout_s:
            raise ValueError("need task_soft_time_limit_s < task_time_limit_s < visibility_timeout_s")
        if self.lease_s < 2 * self.lease_heartbeat_s:
            # A live worker must keep its leases through one late or failed beat.
            raise ValueError("lease_s must be at least two lease_heartbeat_s periods")
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


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path:
    for source in sources:
        value = source().get("config_file")
        if value:
            return Path(value)
    return DEFAULT_CONFIG_FILE


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and the TOML file, with ``overrides`` on top."""
    return Settings(**overrides)
