"""SQLModel tables: tenants, keys, jobs, usage, idempotency records, known queries, files, batches.

The database row is the truth for a job; Celery messages carry only its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# utcnow, UTCDateTime and JSONType are imported from here by much of the code base.
from schemas.columns import JSONType, json_field, timestamp_field
from schemas.columns import UTCDateTime as UTCDateTime  # re-exported: migrations name it here
from schemas.columns import utcnow as utcnow  # re-exported: much of the code imports it from here


class Tenant(SQLModel, table=True):
    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = timestamp_field(nullable=False)
    rpm_limit: int | None = Field(default=None, description="Submissions per minute; none = config default.")
    max_running_jobs: int | None = Field(default=None, description="Running jobs at once; none = default.")
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA zone of its budgets' days and months."
    )
    disabled_at: datetime | None = timestamp_field()


class ApiKey(SQLModel, table=True):
    """An API key; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=40)
    key_hash: str = Field(unique=True, max_length=64)
    display_prefix: str = Field(max_length=16)
    scopes: str = Field(max_length=100, description="Comma-separated: submit,read,admin")
    name: str = Field(default="", max_length=200)
    created_at: datetime = timestamp_field(nullable=False)
    revoked_at: datetime | None = timestamp_field()
    expires_at: datetime | None = timestamp_field()
    last_used_at: datetime | None = timestamp_field()
    allowed_tiers: list[str] | None = json_field()


class Job(SQLModel, table=True):
    """One LLM call as a durable job."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
        Index("ix_jobs_batch_line", "batch_id", "batch_line"),
        # Batch accounting asks "is any job of this batch still open?" once per finished job.
        Index("ix_jobs_batch_status", "batch_id", "status"),
        # The reconciler looks for jobs that ended without their webhooks (workers/webhooks/repair.py).
        Index("ix_jobs_finished", "finished_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    tier: str = Field(max_length=64, index=True)
    kind: str = Field(default="chat", max_length=16, description="chat or embedding")
    priority: str = Field(default="live", max_length=16)
    cache_mode: str = Field(default="exact", max_length=16)
    status: str = Field(default="queued", max_length=16)
    request: dict[str, Any] = json_field(nullable=False)
    result: dict[str, Any] | None = json_field()
    model: str | None = Field(default=None, max_length=128)
    provider: str | None = Field(default=None, max_length=64)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    cache: dict[str, Any] | None = json_field()
    attempts: int = 0
    attempt_log: list[dict[str, Any]] = json_field(nullable=False)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=2000)
    job_metadata: dict[str, Any] = Field(default=None, sa_column=Column("metadata", JSONType, nullable=False))
    callback_url: str | None = Field(default=None, max_length=2048)
    api_key_id: str | None = Field(default=None, max_length=40, description="The key that submitted it.")
    routing: dict[str, Any] | None = json_field()  # the routing rule that chose its tier, if any
    batch_id: str | None = Field(default=None, max_length=40, description="The batch it belongs to.")
    batch_line: int | None = Field(default=None, description="Its 0-based line in the batch's input.")
    custom_id: str | None = Field(default=None, max_length=512, description="The batch line's custom_id.")
    completion_window: str | None = Field(default=None, max_length=8, description="24h: may wait off-peak.")
    provider_batch_id: str | None = Field(
        default=None, max_length=40, index=True, description="The provider batch it went through, if any."
    )
    lease_token: str | None = Field(default=None, max_length=40)
    lease_expires_at: datetime | None = timestamp_field()
    not_before: datetime | None = timestamp_field()
    published_at: datetime | None = timestamp_field()
    created_at: datetime = timestamp_field(nullable=False)
    started_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()
    updated_at: datetime = timestamp_field(nullable=False)


class Usage(SQLModel, table=True):
    """One provider call: tokens, cost, latency and outcome, for billing and budgets."""

    __tablename__ = "usage"
    __table_args__ = (Index("ix_usage_tenant_created", "tenant_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", index=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    tier: str = Field(max_length=64)
    model: str = Field(max_length=128)
    provider: str = Field(max_length=64)
    attempt: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    outcome: str = Field(max_length=64, description="ok or an error code")
    created_at: datetime = timestamp_field(nullable=False)


class IdempotencyRecord(SQLModel, table=True):
    """An ``Idempotency-Key`` seen from a tenant, kept until ``expires_at``."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_idempotency_tenant_key"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    job_id: str = Field(foreign_key="jobs.id", max_length=40)
    created_at: datetime = timestamp_field(nullable=False)
    expires_at: datetime = timestamp_field(nullable=False, index=True)


class KnownQuery(SQLModel, table=True):
    """A request the tenant wants answered from the cache: beat precomputes it off-peak."""

    __tablename__ = "known_queries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "cache_key", name="uq_known_queries_tenant_key"),
        Index("ix_known_queries_tenant_created", "tenant_id", "created_at"),
        Index("ix_known_queries_due", "enabled", "next_run_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    tier: str = Field(max_length=64)
    request: dict[str, Any] = json_field(nullable=False)
    cache_key: str = Field(max_length=64, description="The request's exact-cache key.")
    every_s: int | None = Field(default=None, description="Refresh period; or `cron`.")
    cron: str | None = Field(default=None, max_length=120, description="Refresh times, in `timezone`.")
    ttl_s: int
    window_start: str = Field(max_length=5, description="Off-peak window start, HH:MM local.")
    window_end: str = Field(max_length=5, description="Off-peak window end, HH:MM local (exclusive).")
    timezone: str = Field(max_length=64, description="IANA name of the window's and cron's time zone.")
    enabled: bool = True
    next_run_at: datetime = timestamp_field(nullable=False)
    last_run_at: datetime | None = timestamp_field()
    last_job_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = timestamp_field(nullable=False)
    updated_at: datetime = timestamp_field(nullable=False)


class File(SQLModel, table=True):
    """An uploaded or generated file, OpenAI-style (``file-...``).

    Uploaded bytes live in ``file_contents``; a batch's output and error files have no bytes
    of their own: they are read from the batch's job rows (``batch_id``) when asked for.
    """

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_tenant_created", "tenant_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    purpose: str = Field(max_length=32, description="batch, batch_output or batch_errors")
    filename: str = Field(max_length=512)
    bytes: int = 0
    batch_id: str | None = Field(default=None, max_length=40, description="The batch that generated it.")
    created_at: datetime = timestamp_field(nullable=False)


class FileContent(SQLModel, table=True):
    """The bytes of an uploaded file, apart from its metadata so listing never loads them."""

    __tablename__ = "file_contents"

    file_id: str = Field(primary_key=True, foreign_key="files.id", max_length=40)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Batch(SQLModel, table=True):
    """Many jobs submitted at once from one JSONL input, OpenAI Batch-style (``batch_...``)."""

    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_tenant_created", "tenant_id", "created_at"),
        Index("ix_batches_status", "status"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    tier: str = Field(max_length=64)
    endpoint: str = Field(max_length=64)
    completion_window: str = Field(max_length=8)
    status: str = Field(default="in_progress", max_length=16)
    input_file_id: str | None = Field(default=None, max_length=40)
    output_file_id: str | None = Field(default=None, max_length=40)
    error_file_id: str | None = Field(default=None, max_length=40)
    callback_url: str | None = Field(default=None, max_length=2048)
    batch_metadata: dict[str, Any] = Field(
        default=None, sa_column=Column("metadata", JSONType, nullable=False)
    )
    total: int = Field(default=0, description="Input lines, skipped invalid ones included.")
    invalid_lines: list[dict[str, Any]] = json_field(nullable=False)
    created_at: datetime = timestamp_field(nullable=False)
    in_progress_at: datetime | None = timestamp_field()
    finalizing_at: datetime | None = timestamp_field()
    completed_at: datetime | None = timestamp_field()
    failed_at: datetime | None = timestamp_field()
    cancelling_at: datetime | None = timestamp_field()
    cancelled_at: datetime | None = timestamp_field()
    expires_at: datetime | None = timestamp_field()
    expired_at: datetime | None = timestamp_field()


class WebhookEndpoint(SQLModel, table=True):
    """A tenant's URL that wants signed events; its secret is stored as is, because it signs."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    url: str = Field(max_length=2048)
    event_types: list[str] = json_field(nullable=False)
    description: str = Field(default="", max_length=500)
    secret: str = Field(max_length=100, description="whsec_..., needed in the clear to sign.")
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = timestamp_field()
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    disabled_at: datetime | None = timestamp_field()
    failing_since: datetime | None = timestamp_field()
    created_at: datetime = timestamp_field(nullable=False)
    updated_at: datetime = timestamp_field(nullable=False)


class TenantWebhookSecret(SQLModel, table=True):
    """The tenant's default secret: it signs deliveries to a job's one-off ``callback_url``."""

    __tablename__ = "tenant_webhook_secrets"

    tenant_id: str = Field(primary_key=True, foreign_key="tenants.id", max_length=40)
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = timestamp_field()
    created_at: datetime = timestamp_field(nullable=False)
    updated_at: datetime = timestamp_field(nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint (or callback URL): its body, attempts and outcome.

    ``status`` is pending, succeeded or failed (the dead letter). ``dedupe_key`` (event and
    target) makes a second insert of the same event for the same target a no-op.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_webhook_deliveries_dedupe"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_tenant_created", "tenant_id", "created_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_job", "job_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    event_id: str = Field(max_length=40, description="The webhook-id header, the same on every attempt.")
    job_id: str | None = Field(default=None, max_length=40, description="The job of a job.* event.")
    event_type: str = Field(max_length=64)
    endpoint_id: str | None = Field(default=None, max_length=40, description="None: the callback URL.")
    url: str = Field(max_length=2048)
    dedupe_key: str = Field(max_length=90)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = timestamp_field()
    last_attempt_at: datetime | None = timestamp_field()
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    last_response_ms: float | None = None
    created_at: datetime = timestamp_field(nullable=False)
    updated_at: datetime = timestamp_field(nullable=False)


class ProviderBatch(SQLModel, table=True):
    """Batch-lane jobs sent together through a provider's Batch API (docs/provider-batches.md).

    ``status``: open (taking jobs) -> sending -> submitted -> merging -> done. The member jobs
    are the rows whose ``provider_batch_id`` and ``lease_token`` are this id.
    """

    __tablename__ = "provider_batches"
    __table_args__ = (Index("ix_provider_batches_status", "status", "updated_at"),)

    id: str = Field(primary_key=True, max_length=40)
    provider: str = Field(max_length=64)
    model: str = Field(max_length=128, description="The model alias every line goes to.")
    status: str = Field(default="open", max_length=16)
    lines: int = 0
    bytes: int = 0
    send_attempts: int = 0
    input_file_id: str | None = Field(default=None, max_length=128)
    remote_id: str | None = Field(default=None, max_length=128, description="The provider's batch id.")
    remote_status: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, max_length=2000)
    created_at: datetime = timestamp_field(nullable=False)
    submitted_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()
    updated_at: datetime = timestamp_field(nullable=False)
