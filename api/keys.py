"""API keys: ``sy_`` plus 32 random bytes; only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select, update

from schemas.spend_errors import TierNotAllowed
from schemas.tables import ApiKey, Tenant, utcnow
from workers.ids import new_id

KEY_PREFIX = "sy_"
SCOPES = frozenset({"submit", "read", "admin"})  # what a tenant's keys may hold
# The platform admin's scope: manages every tenant over /v1/admin/. A tenant's ``admin`` scope
# does not include it, and only the host's CLI (or another platform key) can grant it.
PLATFORM_SCOPE = "platform"
PLATFORM_TENANT = "platform"  # the name of the tenant that holds the platform admin keys


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and what the key may do."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    rpm_limit: int | None = None
    allowed_tiers: frozenset[str] | None = None  # None: every tier
    expires_at: datetime | None = None
    tenant_disabled: bool = False

    def allows(self, scope: str) -> bool:
        """A tenant's admin keys may do everything in their tenant, but not the platform's work;
        a platform key may also read (``GET /v1/limits`` shows it every tenant's switches)."""
        if scope in self.scopes:
            return True
        if scope == PLATFORM_SCOPE:
            return False
        return "admin" in self.scopes or (scope == "read" and self.is_platform_admin)

    @property
    def is_platform_admin(self) -> bool:
        return PLATFORM_SCOPE in self.scopes

    def expired(self, now: datetime) -> bool:
        """Whether the key is past its expiry (a rotated key's grace ends this way too)."""
        return self.expires_at is not None and self.expires_at <= now

    def may_use_tier(self, tier: str) -> bool:
        """Whether the key may submit jobs to ``tier``."""
        return self.allowed_tiers is None or tier in self.allowed_tiers


def check_tiers(principal: Principal, tiers: set[str]) -> None:
    """Refuse (403 ``tier_not_allowed``) a submission naming a tier outside the key's allowed tiers."""
    refused = sorted(tier for tier in tiers if not principal.may_use_tier(tier))
    if refused:
        allowed = sorted(principal.allowed_tiers or ())
        raise TierNotAllowed(
            f"This API key may submit only to the tiers {allowed}, not {refused}.",
            allowed_tiers=allowed,
        )


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_tenant(
    session: Session, name: str, rpm_limit: int | None = None, max_running_jobs: int | None = None
) -> Tenant:
    """Add a tenant (the caller commits); limits left None follow the config defaults."""
    tenant = Tenant(
        id=new_id("ten"),
        name=name,
        created_at=utcnow(),
        rpm_limit=rpm_limit,
        max_running_jobs=max_running_jobs,
    )
    session.add(tenant)
    return tenant


def create_key(
    session: Session, tenant_id: str, scopes: set[str], name: str = "", platform: bool = False
) -> str:
    """Add a key for the tenant and return its secret, which is never shown again.

    ``platform``: the key may hold the platform admin's scope too (host CLI only).
    """
    return new_key(session, tenant_id, scopes, name, platform=platform)[1]


def new_key(
    session: Session,
    tenant_id: str,
    scopes: set[str],
    name: str = "",
    *,
    platform: bool = False,
    expires_at: datetime | None = None,
    allowed_tiers: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Add a key for the tenant (the caller commits): its row and its secret, shown only once."""
    allowed = SCOPES | {PLATFORM_SCOPE} if platform else SCOPES
    unknown = set(scopes) - allowed
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(allowed)}, got {sorted(scopes)}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        key_hash=hash_key(secret),
        display_prefix=secret[:10],
        scopes=",".join(sorted(scopes)),
        name=name,
        created_at=utcnow(),
        expires_at=expires_at,
        allowed_tiers=sorted(set(allowed_tiers)) if allowed_tiers is not None else None,
    )
    session.add(row)
    return row, secret


def find_principal(session: Session, secret: str) -> Principal | None:
    """The principal of a presented key, or None if it is unknown or revoked.

    An expired key and a disabled tenant still give a principal: the caller refuses them, with
    their own messages, whether the principal came from here or from its cache.
    """
    if not secret.startswith(KEY_PREFIX):
        return None
    found = session.exec(
        select(ApiKey, Tenant).join(Tenant).where(ApiKey.key_hash == hash_key(secret))  # type: ignore[arg-type]
    ).first()
    if found is None or found[0].revoked_at is not None:
        return None
    key, tenant = found
    return Principal(
        tenant_id=key.tenant_id,
        key_id=key.id,
        scopes=frozenset(key.scopes.split(",")),
        rpm_limit=tenant.rpm_limit,
        allowed_tiers=frozenset(key.allowed_tiers) if key.allowed_tiers is not None else None,
        expires_at=key.expires_at,
        tenant_disabled=tenant.disabled_at is not None,
    )


def create_platform_key(session: Session, name: str = "platform admin") -> str:
    """A new platform admin key, in the platform tenant (made on first use); its secret."""
    tenant = session.exec(select(Tenant).where(Tenant.name == PLATFORM_TENANT)).first()
    if tenant is None:
        tenant = create_tenant(session, PLATFORM_TENANT)
        session.flush()
    return create_key(session, tenant.id, {PLATFORM_SCOPE}, name, platform=True)


def touch_key(session: Session, key_id: str) -> None:
    """Record that the key was used just now (its ``last_used_at``) and commit."""
    session.exec(update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=utcnow()))  # type: ignore[call-overload]
    session.commit()
