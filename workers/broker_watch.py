"""Noticing that Redis lost data, and publishing again what the lost messages carried.

Redis holds every job's message (the broker) and the deferred set of short waits
(workers/dispatch.py). After a restart without persistence, a restart from an older snapshot,
a failover to a replica that had not caught up, or a flush, messages are gone while the
database still says ``queued``: without this pass such a job would wait ``republish_after_s``
(an hour) for its message.

The signal is a marker key (``RedisKeys.broker_marker``) that the reconciler writes with no
expiry, holding the ``run_id`` of the Redis server process it was written on. It is missing
when the data is gone, and holds another ``run_id`` when the server restarted or another one
took over, which may have lost the writes of its last moments. Either way a pass takes the
repair (one script, with a hold, so one reconciler repairs at a time, and a repairer that dies
lets the hold lapse so a later pass starts over). For every ``queued`` row published before
that moment, a due row is published again and a row still waiting (its ``not_before`` ahead:
its deferred entry may be lost too) is deferred again for the time it has left. Then the
marker gets this server's ``run_id``. A message that did survive becomes a duplicate, which
is harmless: a claim succeeds only once. The first pass on a new Redis (or after an upgrade)
repairs too, which at worst duplicates the messages of the jobs queued then. See
docs/redis-loss.md.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import structlog
from redis import Redis
from redis.exceptions import ResponseError
from sqlalchemy import select
from sqlmodel import Session

from schemas.tables import utcnow
from workers import store
from workers.keys import RedisKeys
from workers.runtime import Runtime

# Long enough for a repair of a large backlog; a repairer that died delays the next one this long.
REPAIR_HOLD_S = 60
PAGE = 1000
REPAIRING = "repairing"
# Take the repair unless the marker names this server (ARGV[1]) or a repair is under way.
TAKE_REPAIR = """
local marker = redis.call('GET', KEYS[1])
if marker == ARGV[1] or marker == ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
log = structlog.get_logger("switchyard.broker_watch")


def server_run_id(redis: Redis) -> str:
    """The ``run_id`` of the Redis server process: new at every start, and per server."""
    try:
        info = redis.info("server")
    except ResponseError:  # INFO disabled (some managed services): only a lost marker tells
        return "run-id-unknown"
    return str(info.get("run_id", "run-id-unknown"))


def take_repair(redis: Redis, keys: RedisKeys) -> str | None:
    """The server's ``run_id`` when Redis lost data since the marker was written and this
    caller now repairs; None when the marker is this server's or another caller repairs."""
    run_id = server_run_id(redis)
    taken = redis.register_script(TAKE_REPAIR)(
        keys=[keys.broker_marker], args=[run_id, REPAIRING, REPAIR_HOLD_S]
    )
    return run_id if taken else None


def mark_intact(redis: Redis, keys: RedisKeys, run_id: str | None = None) -> None:
    """Write the marker for good: this server (``run_id``) holds every message from now on."""
    redis.set(keys.broker_marker, run_id or server_run_id(redis))


def republish_after_loss(rt: Runtime) -> int:
    """If Redis lost data since the last pass, publish every queued job again; how many."""
    run_id = take_repair(rt.redis, rt.keys)
    if run_id is None:
        return 0
    cutoff = utcnow()
    republished, after = 0, ""
    while True:
        rows = _published_before(rt, cutoff, after)
        if not rows:
            break
        republished += _send_again(rt, rows)
        after = rows[-1][0]
    mark_intact(rt.redis, rt.keys, run_id)
    log.warning("broker_loss_repaired", republished=republished)
    return republished


Row = tuple[str, str, str, str, datetime | None]


def _published_before(rt: Runtime, cutoff: datetime, after: str) -> list[Row]:
    """A page of queued rows whose message went out before ``cutoff``, by id after ``after``."""
    jobs = store.JOBS.c
    columns = (jobs.id, jobs.tier, jobs.priority, jobs.tenant_id, jobs.not_before)
    query = (
        select(*columns)
        .where(jobs.status == "queued", jobs.published_at < cutoff, jobs.id > after)
        .order_by(jobs.id)
        .limit(PAGE)
    )
    with Session(rt.engine) as session:
        return [tuple(row) for row in session.execute(query).all()]


def _send_again(rt: Runtime, rows: list[Row]) -> int:
    """Publish the due rows (grouped, pipelined) and defer the waiting ones; then mark them."""
    now = utcnow()
    due: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for job_id, tier, priority, tenant_id, not_before in rows:
        if not_before is not None and not_before > now:
            rt.dispatcher.defer(job_id, tier, priority, tenant_id, (not_before - now).total_seconds())
        else:
            due[(tier, priority, tenant_id)].append(job_id)
    for (tier, priority, tenant_id), job_ids in due.items():
        rt.dispatcher.publish_many(job_ids, tier, priority, tenant_id)
    store.mark_published(rt.engine, [row[0] for row in rows])
    return len(rows)
