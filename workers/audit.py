"""The audit log: one append-only row per change made through an admin surface.

Who (the key, or None for the CLI on the host), what (``action`` on a target), when, from
which address, and the target's values before and after. Secrets never enter it: fields
named in :data:`SECRET_FIELDS` are dropped at any depth before the row is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python
from sqlmodel import Session

from schemas.spend_tables import AuditEntry
from schemas.tables import utcnow

SECRET_FIELDS = frozenset({"key_hash", "secret", "previous_secret", "api_key", "password", "token"})


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an API key (and its tenant) from an address, or the host's CLI."""

    key_id: str | None = None
    tenant_id: str | None = None
    address: str | None = None


CLI = Actor()  # a change made with shell access, through the `switchyard` command


def without_secrets(values: Any) -> Any:
    """``values`` with every field named like a secret removed, at any depth."""
    if isinstance(values, Mapping):
        return {k: without_secrets(v) for k, v in values.items() if k not in SECRET_FIELDS}
    if isinstance(values, list | tuple):
        return [without_secrets(v) for v in values]
    return values


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    tenant_id: str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the caller's transaction, so it commits with the change or not at all."""
    entry = AuditEntry(
        at=utcnow(),
        actor_key_id=actor.key_id,
        actor_tenant_id=actor.tenant_id,
        tenant_id=tenant_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        address=actor.address,
        before=_stored(before),
        after=_stored(after),
    )
    session.add(entry)
    return entry


def _stored(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # JSON-ready (datetimes as ISO strings), without secrets.
    return None if values is None else to_jsonable_python(without_secrets(values))
