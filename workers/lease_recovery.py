"""The reconciler's pass over expired leases: a dead worker's attempt is recorded, then run again.

A running job whose lease ran out lost its worker (killed, out of memory, a machine gone): the
heartbeat stopped renewing it (workers/lease_heartbeat.py). Nobody knows how far its attempt
got, so the pass records it as it must be assumed to be: an attempt with outcome
``worker_lost`` in the job's ``attempt_log``, and a usage row for a call that may have been
billed, priced at its estimated maximum (workers/lost_attempts.py). In the same transaction
the job goes back to ``queued`` and is published again, or, with its attempts used up, fails
with ``max_attempts`` (the dead letter). Each change is conditional on the expired lease the
pass read, so a worker that was only slow and renewed meanwhile keeps its job.

A job parked in a provider batch holds the batch's lease (its token is the batch id): when that
one expires, the job returns to the live lane without a lost attempt, since no worker held it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import RowMapping

from schemas.tables import Usage, utcnow
from workers import store
from workers.budgets.estimate import actual_charge
from workers.lost_attempts import lost_attempt
from workers.runtime import Runtime

SWEEP_LIMIT = 1000
_JOBS = store.JOBS.c
_COLUMNS = (
    _JOBS.id,
    _JOBS.tenant_id,
    _JOBS.tier,
    _JOBS.priority,
    _JOBS.kind,
    _JOBS.request,
    _JOBS.attempts,
    _JOBS.attempt_log,
    _JOBS.cost_usd,
    _JOBS.started_at,
    _JOBS.lease_token,
    _JOBS.lease_expires_at,
    _JOBS.provider_batch_id,
    _JOBS.api_key_id,
)


def recover_expired_leases(rt: Runtime) -> tuple[int, int]:
    """Record the lost attempts of dead workers' jobs, then requeue them or fail those out of
    attempts. Returns (requeued, failed)."""
    requeued = failed = 0
    for row in expired_leases(rt):
        fields, usage = _lost_fields(rt, row)
        if row["attempts"] >= rt.settings.max_attempts:
            failed += _dead_letter(rt, row, usage, fields)
        else:
            requeued += _requeue(rt, row, usage, fields)
    return requeued, failed


def expired_leases(rt: Runtime) -> list[RowMapping]:
    """Running jobs whose lease ran out, oldest first."""
    expired = and_(_JOBS.status == "running", _JOBS.lease_expires_at < utcnow())
    query = sa_select(*_COLUMNS).where(expired).order_by(_JOBS.lease_expires_at).limit(SWEEP_LIMIT)
    with rt.engine.connect() as connection:
        return list(connection.execute(query).mappings())


def _lost_fields(rt: Runtime, row: RowMapping) -> tuple[dict[str, Any], Usage | None]:
    """The row's new attempt log and cost, and the lost call's usage row (none for a lane job)."""
    if row["provider_batch_id"] is not None and row["lease_token"] == row["provider_batch_id"]:
        return {}, None
    entry, usage = lost_attempt(rt.settings, row)
    fields = {
        "attempt_log": [*(row["attempt_log"] or []), entry],
        "cost_usd": (row["cost_usd"] or 0.0) + usage.cost_usd,
    }
    return fields, usage


def _requeue(rt: Runtime, row: RowMapping, usage: Usage | None, fields: dict[str, Any]) -> int:
    # Commit, publish, mark: the order the API uses, so a crash in between leaves an orphan
    # that publish_unsent repairs on a later pass.
    if not store.requeue_expired(rt.engine, row["id"], row["lease_token"], usage, **fields):
        return 0
    _count_in_budgets(rt, row, usage)
    rt.dispatcher.publish(row["id"], row["tier"], row["priority"], row["tenant_id"])
    store.mark_published(rt.engine, [row["id"]])
    return 1


def _dead_letter(rt: Runtime, row: RowMapping, usage: Usage | None, fields: dict[str, Any]) -> int:
    message = f"The job's worker was lost {row['attempts']} times; giving up (dead letter)."
    changed = store.fail_expired(
        rt.engine, row["id"], row["lease_token"], usage, "max_attempts", message, **fields
    )
    if changed:
        _count_in_budgets(rt, row, usage)
    final = store.load_job(rt.engine, row["id"]) if changed else None
    if final is not None:
        rt.outcomes.announce_job(final)
    return int(changed)


def _count_in_budgets(rt: Runtime, row: RowMapping, usage: Usage | None) -> None:
    """Count the lost call, as its committed usage row prices it, in the job's budgets; this
    also drops the dead worker's reservation (the same member), if it has not expired yet."""
    if usage is None:
        return
    budgets = rt.budgets.applicable(row["tenant_id"], row["api_key_id"], row["tier"], [usage.model])
    charge = actual_charge(usage.cost_usd, usage.prompt_tokens, usage.completion_tokens)
    rt.budgets.count(budgets, charge, f"{row['id']}:{row['attempts']}")
