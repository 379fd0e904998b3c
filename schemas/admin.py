"""The admin API's models: tenants (``/v1/admin/tenants``), API keys (``/v1/keys``) and the
audit log (``/v1/audit``). Bodies refuse unknown fields, like every other request model."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.spend_tables import AuditEntry
from schemas.tables import ApiKey, Tenant

TenantScope = Literal["submit", "read", "admin"]  # what a key made over HTTP may hold
DEFAULT_ROTATION_GRACE_S = 86_400
MAX_ROTATION_GRACE_S = 7 * 86_400  # an old secret that lives on for weeks is a second key
MAX_KEY_LIFETIME_S = 10 * 365 * 86_400
NAME = r"^[^\x00-\x1f\x7f]+$"  # no control characters: names are printed by the CLI


def known_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone, else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}, e.g. 'Europe/Paris' or 'UTC'") from exc
    return name


class TenantFields(BaseModel):
    """What a platform admin may set on a tenant; limits None follow the config's defaults."""

    model_config = ConfigDict(extra="forbid")

    rpm_limit: int | None = Field(default=None, ge=1, description="Job submissions per minute.")
    max_running_jobs: int | None = Field(default=None, ge=1, description="Jobs running at once.")


class TenantCreate(TenantFields):
    """The body of ``POST /v1/admin/tenants``."""

    name: str = Field(min_length=1, max_length=200, pattern=NAME, examples=["acme"])
    timezone: str = Field(
        default="UTC", max_length=64, description="IANA zone of its budgets' days and months."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return known_timezone(name)


class TenantUpdate(TenantFields):
    """The body of ``PATCH /v1/admin/tenants/{id}``: only the fields given change; a limit
    given as null goes back to the config's default."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NAME)
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str | None) -> str | None:
        return None if name is None else known_timezone(name)


class TenantPublic(BaseModel):
    """A tenant as the admin API shows it."""

    id: str
    object: Literal["tenant"] = "tenant"
    name: str
    rpm_limit: int | None
    max_running_jobs: int | None
    timezone: str
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_row(cls, row: Tenant) -> TenantPublic:
        return cls.model_validate(row, from_attributes=True)


class TenantList(BaseModel):
    data: list[TenantPublic]
    has_more: bool
    next_cursor: str | None


class KeyCreate(BaseModel):
    """The body of ``POST /v1/keys``: one of ``expires_at`` / ``expires_in_s``, or neither."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    scopes: list[TenantScope] = Field(default=["submit", "read"], min_length=1, max_length=3)
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (UTC offset required)."
    )
    expires_in_s: int | None = Field(default=None, ge=1, le=MAX_KEY_LIFETIME_S)
    allowed_tiers: list[str] | None = Field(
        default=None, min_length=1, max_length=100, description="Tiers it may submit to; absent: every tier."
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in_s is not None:
            raise ValueError("give expires_at or expires_in_s, not both")
        return self


class KeyRotate(BaseModel):
    """The body of ``POST /v1/keys/{id}/rotate``."""

    model_config = ConfigDict(extra="forbid")

    grace_s: int = Field(
        default=DEFAULT_ROTATION_GRACE_S,
        ge=0,
        le=MAX_ROTATION_GRACE_S,
        description="How long the old secret keeps working; 0 ends it now.",
    )


class KeyPublic(BaseModel):
    """An API key as the admin API shows it: never its secret nor its hash."""

    id: str
    object: Literal["api_key"] = "api_key"
    tenant_id: str
    prefix: str = Field(description="The secret's first characters, to recognise it.")
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None = Field(description="Written at most about once a minute.")
    expires_at: datetime | None
    allowed_tiers: list[str] | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyPublic:
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            prefix=row.display_prefix,
            name=row.name,
            scopes=row.scopes.split(","),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            allowed_tiers=row.allowed_tiers,
            revoked_at=row.revoked_at,
        )


class KeyCreated(KeyPublic):
    """A new key with its secret, shown this once."""

    secret: str = Field(description="`sy_...`: shown only in this answer; only its SHA-256 is kept.")


class KeyList(BaseModel):
    data: list[KeyPublic]
    has_more: bool
    next_cursor: str | None


class AuditEntryPublic(BaseModel):
    """One change: who (key, or null for the host's CLI), what, when, from where, before and after."""

    id: str
    object: Literal["audit_entry"] = "audit_entry"
    at: datetime
    actor_key_id: str | None
    actor_tenant_id: str | None
    tenant_id: str | None
    action: str
    target_type: str
    target_id: str
    address: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: AuditEntry) -> AuditEntryPublic:
        fields = row.model_dump()
        return cls(**{**fields, "id": str(row.id)})


class AuditList(BaseModel):
    data: list[AuditEntryPublic]
    has_more: bool
    next_cursor: str | None
