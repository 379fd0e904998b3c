"""Hourly usage rollups (the ``usage_hourly`` table), written as calls settle.

Every write of a usage row or of a job's final state adds its figures here in the same
transaction, with one upsert (``INSERT ... ON CONFLICT DO UPDATE SET col = col + excluded.col``):
a report then sums a few rows per hour instead of every call, and a crash can never leave the
rollups and the rows they sum apart. What counts where (docs/spend.md, "Usage and cost reports"):

- a provider call (a usage row): ``calls``, tokens and ``cost_usd``, in the hour of the row's
  ``created_at``, under the call's tier, model and provider;
- a job that ends ``succeeded`` or ``failed``: ``jobs`` + 1 in the hour it ended, under the
  job's model and provider ('' when none answered it); a canceled job ran nothing and is not
  counted. A job answered by a cache also counts ``cache_hits`` and ``cache_savings_usd``,
  the cost of the call that made the answer (``cache.saved_usd`` on the job).

The job's ``priority`` and ``api_key_id`` ('' when none) come from the job row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.engine import Connection

from schemas.columns import UTCDateTime
from schemas.spend_tables import UsageHourly
from schemas.tables import Usage
from schemas.usage_reports import FIGURES

ROLLUPS: Table = UsageHourly.__table__  # type: ignore[attr-defined]
KEY = ("tenant_id", "hour", "tier", "model", "provider", "api_key_id", "priority")
FINAL_STATES = ("succeeded", "failed")


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in (a time without a zone is read as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def call_figures(usage: Usage, job: Mapping[str, Any]) -> dict[str, Any]:
    """One provider call's contribution; ``job`` gives its priority and API key (column names)."""
    return {
        "tenant_id": usage.tenant_id,
        "hour": hour_of(usage.created_at),
        "tier": usage.tier,
        "model": usage.model or "",
        "provider": usage.provider or "",
        "api_key_id": job.get("api_key_id") or "",
        "priority": job.get("priority") or "live",
        "calls": 1,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": usage.cost_usd,
    }


def ended_figures(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """A job row's contribution (column names) if it is in a final state that counts, else None."""
    if job.get("status") not in FINAL_STATES:
        return None
    cache = job.get("cache") or {}
    hit = bool(cache.get("hit"))
    return {
        "tenant_id": job["tenant_id"],
        "hour": hour_of(job.get("finished_at") or job["updated_at"]),
        "tier": job["tier"],
        "model": job.get("model") or "",
        "provider": job.get("provider") or "",
        "api_key_id": job.get("api_key_id") or "",
        "priority": job.get("priority") or "live",
        "jobs": 1,
        "cache_hits": int(hit),
        "cache_savings_usd": float(cache.get("saved_usd") or 0.0) if hit else 0.0,
    }


def add(connection: Connection, contributions: Iterable[Mapping[str, Any] | None]) -> None:
    """Add the contributions to their rollup rows, in the caller's transaction.

    Contributions to one row are summed first (one statement may not touch a row twice), and
    rows are written in key order, so two transactions never wait on each other's rows crosswise.
    """
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for contribution in contributions:
        if contribution is None:
            continue
        key = tuple(contribution[name] for name in KEY)
        row = merged.setdefault(key, {**dict(zip(KEY, key, strict=True)), **dict.fromkeys(FIGURES, 0)})
        for name in FIGURES:
            row[name] += contribution.get(name, 0)
    if merged:
        rows = [merged[key] for key in sorted(merged)]
        connection.execute(_UPSERT, rows)


def _upsert() -> TextClause:
    """The upsert, one text for PostgreSQL and SQLite (they spell ON CONFLICT alike).

    Text, not SQLAlchemy's dialect inserts: an ``on_conflict_do_update`` statement is not
    cacheable, so it was compiled again on every call, half of the upsert's cost.
    """
    columns = ", ".join((*KEY, *FIGURES))
    values = ", ".join(f":{name}" for name in (*KEY, *FIGURES))
    additions = ", ".join(f"{name} = usage_hourly.{name} + excluded.{name}" for name in FIGURES)
    statement = (
        f"INSERT INTO usage_hourly ({columns}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {additions}"
    )
    return text(statement).bindparams(bindparam("hour", type_=UTCDateTime()))


_UPSERT = _upsert()
