"""API keys: ``sy_`` plus 32 random bytes; only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from schemas.tables import ApiKey, Tenant, utcnow
from workers.ids import new_id

KEY_PREFIX = "sy_"
SCOPES = frozenset({"submit", "read", "admin"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and what the key may do."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    rpm_limit: int | None = None

    def allows(self, scope: str) -> bool:
        """Admin keys may do everything."""
        return scope in self.scopes or "admin" in self.scopes


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


def create_key(session: Session, tenant_id: str, scopes: set[str], name: str = "") -> str:
    """Add a key for the tenant and return its secret, which is never shown again."""
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}, got {sorted(scopes)}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=new_id("key"),
            tenant_id=tenant_id,
            key_hash=hash_key(secret),
            display_prefix=secret[:10],
            scopes=",".join(sorted(scopes)),
            name=name,
            created_at=utcnow(),
        )
    )
    return secret


def find_principal(session: Session, secret: str) -> Principal | None:
    """The principal of a presented key, or None if it is unknown or revoked."""
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
    )
