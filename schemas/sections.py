"""The nested sections of Settings, one per subsystem.

Cache, precompute, provider batches, rate limits, webhooks and streaming: each is a
``[section]`` table of the TOML file and ``SWITCHYARD_<SECTION>__<FIELD>`` in the environment;
its docstring names the doc that explains it.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator


class CacheSettings(BaseModel):
    """The semantic cache's matching, and the checks that raise its thresholds (docs/caching.md)."""

    semantic_threshold: float = Field(
        0.70,
        gt=0,
        le=1,
        description="Cosine similarity a cached question needs, before the guards and the second stage.",
    )
    shadow_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of semantic hits whose real call also runs, at precompute priority, to check "
        "the hit (real spend).",
    )
    answer_agreement: float = Field(
        0.8, gt=0, le=1, description="Cosine similarity of the two answers a shadow check calls agreed."
    )
    false_hit_ceiling: float = Field(
        0.05, ge=0, lt=1, description="Estimated false-hit rate above which a namespace's threshold rises."
    )
    min_verified: int = Field(20, gt=0, description="Checks a namespace needs before its threshold may move.")
    threshold_step: float = Field(0.02, gt=0, le=0.5, description="How much one raise adds to a threshold.")
    max_threshold: float = Field(0.97, gt=0, le=1, description="No raise goes above this.")
    verification_ttl_s: int = Field(
        30 * 86_400,
        gt=0,
        description="A namespace's checks (and raised threshold) are forgotten after this long without one.",
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


class MetricsSettings(BaseModel):
    """Prometheus metrics (docs/observability.md, "Metrics")."""

    worker_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="A worker node's metrics port, 0: off; `switchyard up` numbers its nodes from it.",
    )
    worker_host: str = Field(
        "127.0.0.1", description="Where worker nodes serve metrics; 0.0.0.0 to scrape from other machines."
    )
    token: SecretStr | None = Field(
        None, description="When set, the API's /metrics wants `Authorization: Bearer <token>`."
    )
