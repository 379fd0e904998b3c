"""Webhooks: request and response models of ``/v1/webhook-endpoints``, ``/v1/webhook-deliveries``
and ``/v1/webhook-secret``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.tables import WebhookDelivery, WebhookEndpoint

# What a tenant can subscribe to; `budget.threshold` is announced once budgets exist.
EVENT_TYPES = (
    "job.succeeded",
    "job.failed",
    "job.canceled",
    "batch.completed",
    "batch.failed",
    "batch.canceled",
    "budget.threshold",
)
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class EndpointFields(BaseModel):
    """What can be changed on an endpoint; every field optional (an update)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=2048, examples=["https://example.com/hooks"])
    event_types: list[str] | None = Field(
        None, max_length=len(EVENT_TYPES), description=f"Any of {', '.join(EVENT_TYPES)}; empty: all."
    )
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = Field(None, description="true re-enables a disabled endpoint.")


class EndpointCreate(EndpointFields):
    """The body of ``POST /v1/webhook-endpoints``."""

    url: str = Field(min_length=1, max_length=2048, examples=["https://example.com/hooks"])


class EndpointUpdate(EndpointFields):
    """The body of ``PATCH /v1/webhook-endpoints/{id}``."""


class RotateSecret(BaseModel):
    """The body of a secret rotation; the old secret keeps signing for ``grace_s``."""

    model_config = ConfigDict(extra="forbid")

    grace_s: int | None = Field(None, ge=0, le=7 * 86_400, description="Default from config (24 h).")


class EndpointPublic(BaseModel):
    """An endpoint as the API shows it; the secret only on create and rotate."""

    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(None, description="`whsec_...`: shown once, on create and on rotate.")

    @classmethod
    def from_row(cls, row: WebhookEndpoint, show_secret: bool = False) -> EndpointPublic:
        fields = row.model_dump(exclude={"tenant_id", "secret", "previous_secret"})
        return cls(**fields, secret=row.secret if show_secret else None)


class EndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EndpointPublic]
    has_more: bool
    next_cursor: str | None


class DeliveryPublic(BaseModel):
    """One event for one endpoint: its attempts and outcome (``failed``: the dead letter)."""

    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event_id: str = Field(description="The `webhook-id` header, the same on every attempt.")
    event_type: str
    endpoint_id: str | None = Field(description="None for a job's one-off `callback_url`.")
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response_ms: float | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: WebhookDelivery) -> DeliveryPublic:
        return cls(**row.model_dump(exclude={"tenant_id", "dedupe_key", "body"}))


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryPublic]
    has_more: bool
    next_cursor: str | None


class BulkRedeliver(BaseModel):
    """Send again the ended deliveries of one endpoint created in ``[since, until)``."""

    model_config = ConfigDict(extra="forbid")

    endpoint_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    since: datetime
    until: datetime | None = Field(None, description="Default: now.")
    status: Literal["failed", "succeeded"] = Field("failed", description="Which ended deliveries.")


class RedeliverResult(BaseModel):
    object: Literal["webhook_redelivery"] = "webhook_redelivery"
    redelivered: int
    delivery_ids: list[str]


class TenantSecretPublic(BaseModel):
    """The tenant's default secret: it signs deliveries to jobs' ``callback_url``."""

    object: Literal["webhook_secret"] = "webhook_secret"
    secret: str
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
