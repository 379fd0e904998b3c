"""Known queries of a tenant: register, read, change and drop, and suggestions to register.

A known query goes through the same input checks as a job (``check_job``: tier, model,
messages, ``max_tokens``, storable text), plus its schedule: exactly one of ``every_s`` /
``cron``, an ``HH:MM`` window and an IANA time zone (``invalid_schedule`` names the field).
Window, time zone and TTL left out are taken from config and the tier when it is registered.
A tier with routing rules, or an auto tier, routes the request as a live job without metadata
would be routed, and the query keeps the tier it was routed to (docs/spend.md).
A new or changed known query is due at once: it runs at the first scan inside its window.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.job_limits import check_job
from api.keys import Principal
from api.services import Services
from schemas.errors import InvalidSchedule, KnownQueryExists
from schemas.jobs import JobCreate
from schemas.known_queries import KnownQueryCreate, KnownQueryFields, KnownQueryUpdate
from schemas.openai import ChatRequest
from schemas.settings import Settings
from schemas.tables import KnownQuery, utcnow
from workers.cache.exact import request_key
from workers.db import session_scope
from workers.ids import new_id
from workers.paging import cursor_row, newest_first
from workers.routing_rules import route_request
from workers.schedule import check_cron, check_timezone, check_window
from workers.tenant_rows import get_owned

# The fields that describe what runs and when; changing any of them makes the query due now.
SPEC_FIELDS = ("tier", "request", "every_s", "cron", "ttl_s", "window_start", "window_end", "timezone")


def create(services: Services, principal: Principal, body: KnownQueryCreate) -> KnownQuery:
    """Register a known query, due at once."""
    settings = services.settings
    if (body.window_start is None) != (body.window_end is None):
        raise InvalidSchedule(
            "Give both window_start and window_end, or neither for the default window.",
            param="window_start" if body.window_start is None else "window_end",
        )
    spec = _resolve(settings, principal.tenant_id, _given(body), {})
    now = utcnow()
    row = KnownQuery(
        id=new_id("kq"),
        tenant_id=principal.tenant_id,
        enabled=body.enabled,
        next_run_at=now,
        created_at=now,
        updated_at=now,
        **spec,
    )
    with (
        _unique(services, principal.tenant_id, row.cache_key, None),
        session_scope(services.engine) as session,
    ):
        session.add(row)
    return row


def update(services: Services, principal: Principal, query_id: str, body: KnownQueryUpdate) -> KnownQuery:
    """Change the fields given; a change of what runs or when (or enabling) makes it due now."""
    with session_scope(services.engine) as session:
        row = get(session, principal.tenant_id, query_id)
        current = {name: getattr(row, name) for name in SPEC_FIELDS}
        spec = _resolve(services.settings, principal.tenant_id, _given(body), current)
        changed = {name for name, value in spec.items() if getattr(row, name) != value}
        enabling = body.enabled is True and not row.enabled
        if body.enabled is not None and body.enabled != row.enabled:
            changed.add("enabled")
            row.enabled = body.enabled
        if not changed:
            return row
        for name in changed - {"enabled"}:
            setattr(row, name, spec[name])
        now = utcnow()
        if changed - {"enabled"} or enabling:
            row.next_run_at = now
        row.updated_at = now
        with _unique(services, principal.tenant_id, row.cache_key, row.id):
            session.flush()
    return row


def get(session: Session, tenant_id: str, query_id: str) -> KnownQuery:
    """The tenant's known query, or NotFound (another tenant's does not exist for the caller)."""
    return get_owned(session, KnownQuery, tenant_id, query_id, "known query", "known_query_id")


def delete(services: Services, principal: Principal, query_id: str) -> None:
    """Stop precomputing it; an answer already cached stays until its TTL ends."""
    with session_scope(services.engine) as session:
        session.delete(get(session, principal.tenant_id, query_id))


def list_page(session: Session, tenant_id: str, limit: int, cursor: str | None) -> list[KnownQuery]:
    """The tenant's known queries, newest first, after ``cursor``; one extra for ``has_more``."""
    query = select(KnownQuery).where(col(KnownQuery.tenant_id) == tenant_id)
    after = cursor_row(session, KnownQuery, tenant_id, cursor)
    return list(session.exec(newest_first(query, KnownQuery, after, limit)))


def suggestions(services: Services, principal: Principal, hours: int, limit: int) -> list[dict[str, Any]]:
    """The tenant's most missed requests of the last ``hours``, each with the known query
    already registered for it, if any."""
    rows = services.results.suggestions(principal.tenant_id, hours, limit)
    keys = [row["key"] for row in rows]
    registered: dict[str, str] = {}
    if keys:
        with Session(services.engine) as session:
            found = session.exec(
                select(KnownQuery.cache_key, KnownQuery.id).where(
                    col(KnownQuery.tenant_id) == principal.tenant_id, col(KnownQuery.cache_key).in_(keys)
                )
            ).all()
        registered = dict(found)
    return [{**row, "known_query_id": registered.get(row["key"])} for row in rows]


def _given(body: KnownQueryFields) -> dict[str, Any]:
    """The fields the body sets, the schedule pair made consistent: one of them replaces the other."""
    given = {name: getattr(body, name) for name in body.model_fields_set if name != "enabled"}
    every_s, cron = given.get("every_s"), given.get("cron")
    if every_s is not None and cron is not None:
        raise InvalidSchedule("Give either every_s or cron, not both.", param="cron")
    if every_s is not None:
        given["cron"] = None
    if cron is not None:
        given["every_s"] = None
    return given


def _resolve(
    settings: Settings, tenant_id: str, given: dict[str, Any], current: dict[str, Any]
) -> dict[str, Any]:
    """The checked spec of a known query: ``current`` with ``given`` on top, defaults filled in,
    the request normalised as the API stores a job's, and its exact-cache key."""
    precompute = settings.precompute
    merged = {**current, **{name: value for name, value in given.items() if value is not None}}
    for name in ("every_s", "cron"):
        if name in given:
            merged[name] = given[name]
    request = merged.get("request")
    if not isinstance(request, ChatRequest):
        request = ChatRequest.model_validate(request)
    job = JobCreate.model_validate({"tier": merged["tier"], "request": request, "priority": "precompute"})
    # Stored on the tier a live job of this request routes to, so its cached answer is found there.
    job, _ = route_request(settings, job)
    check_job(job, settings)
    tier = job.tier
    every_s, cron = merged.get("every_s"), merged.get("cron")
    if (every_s is None) == (cron is None):
        raise InvalidSchedule("Give exactly one of every_s (seconds) and cron.", param="every_s")
    if cron is not None:
        cron = cron.strip()
        check_cron(cron)
    # An explicit null puts the default back.
    window_start = _or_default(given, merged, "window_start", precompute.default_window_start)
    window_end = _or_default(given, merged, "window_end", precompute.default_window_end)
    timezone = _or_default(given, merged, "timezone", precompute.default_timezone)
    check_window(window_start, window_end)
    check_timezone(timezone)
    ttl_s = _or_default(given, merged, "ttl_s", settings.tiers[tier].cache_ttl_s)
    stored = request.model_dump(mode="json", exclude_none=True)  # exactly as a live job's request
    return {
        "tier": tier,
        "request": stored,
        "cache_key": request_key(tenant_id, tier, stored),
        "every_s": every_s,
        "cron": cron,
        "ttl_s": ttl_s,
        "window_start": window_start,
        "window_end": window_end,
        "timezone": timezone,
    }


def _or_default(given: dict[str, Any], merged: dict[str, Any], name: str, default: Any) -> Any:
    if name in given and given[name] is None:
        return default
    value = merged.get(name)
    return default if value is None else value


@contextmanager
def _unique(services: Services, tenant_id: str, cache_key: str, own_id: str | None) -> Iterator[None]:
    """Turn a duplicate (tenant, cache key) into 409 ``known_query_exists``: checked before the
    write and, for a concurrent registration, by the unique constraint."""
    existing = _registered(services, tenant_id, cache_key, own_id)
    if existing is None:
        try:
            yield
            return
        except IntegrityError:
            existing = _registered(services, tenant_id, cache_key, own_id)
            if existing is None:
                raise
    raise KnownQueryExists(
        f"This request is already a known query on this tier: {existing}; change that one instead.",
        known_query_id=existing,
    )


def _registered(services: Services, tenant_id: str, cache_key: str, own_id: str | None) -> str | None:
    with Session(services.engine) as session:
        found = session.exec(
            select(KnownQuery.id).where(
                col(KnownQuery.tenant_id) == tenant_id, col(KnownQuery.cache_key) == cache_key
            )
        ).first()
    return found if found != own_id else None
