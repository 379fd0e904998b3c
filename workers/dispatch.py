"""Publishing jobs to their tier queues; the message is only the job id.

Queue order is fair between tenants. Each message gets a broker priority (kombu's Redis
transport keeps one list per priority and pops the lowest number first) from two parts:

- its class lane: live 0-3, batch 4-7, precompute 8-9, so a worker always takes live work
  first, whatever the tenants;
- its tenant's backlog in the tier: the tenant's 1st queued job goes in the lane's first
  level, the 2nd in the next, the 3rd and 4th in the next, every later one in the last.

A tenant that queues 10,000 jobs therefore puts all but its first few in the last level, and
a job of a tenant with little queued overtakes them. Within a level, order is first in,
first out. The backlog is a Redis counter per tier and tenant: up on publish, down when a
worker takes the job, and reset from the database by every reconciler pass. See
docs/rate-limits.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from kombu.transport.redis import Channel
from redis import Redis
from redis.client import Pipeline

from schemas.settings import PRIORITIES
from workers import bulk_publish, tracing
from workers.bulk_publish import MessageTemplate
from workers.keys import RedisKeys, tier_queue

RUN_JOB_TASK = "switchyard.run_job"
# Atomically take the due entries of a sorted set (score = due time): one releaser each.
POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""
# Publish one job: count it in its tenant's backlog, and push its message on the list of the
# level that backlog gives it, in one round trip. The level is message_priority's, in Lua.
# KEYS: the tier's backlog hash, then the queue's lists, one per priority step.
# ARGV: the tenant, the class lane's first level and its number of levels, and the message
# with LEVEL_SLOT where its priority goes.
PUBLISH_ONE = """
local backlog = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local ahead, bits = math.max(0, backlog - 1), 0
while ahead > 0 do
  bits = bits + 1
  ahead = math.floor(ahead / 2)
end
local level = tonumber(ARGV[2]) + math.min(tonumber(ARGV[3]) - 1, bits)
local message = string.gsub(ARGV[4], '@sy%-level@', tostring(level), 1)
redis.call('LPUSH', KEYS[level + 2], message)
return level
"""
PRIORITY_STEPS = list(range(10))
# Messages per kombu publish batch (one Redis pipeline) in publish_many.
PUBLISH_BATCH = 1000
CLASS_LANES: dict[str, tuple[int, int]] = {"live": (0, 4), "batch": (4, 4), "precompute": (8, 2)}


def message_priority(priority: str, backlog: int) -> int:
    """The broker priority (0 first) of a job of class ``priority`` whose tenant has
    ``backlog`` jobs queued in the tier, this one included."""
    base, levels = CLASS_LANES[priority]
    return base + min(levels - 1, max(0, backlog - 1).bit_length())


def priority_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps for one queue, one per priority step."""
    return [queue if step == 0 else f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS]


class Dispatcher:
    """Publishes job ids in fair order and reads queue depths."""

    def __init__(self, celery: Celery, redis: Redis, keys: RedisKeys) -> None:
        self.celery = celery
        self.redis = redis
        self.keys = keys
        self._pop_due = redis.register_script(POP_DUE)
        self._publish_one = redis.register_script(PUBLISH_ONE)
        self._redis_broker = str(celery.conf.broker_url).startswith("redis")
        self._templates: dict[tuple[str, bool], MessageTemplate] = {}

    def publish(
        self, job_id: str, tier: str, priority: str, tenant_id: str, traceparent: str | None = None
    ) -> None:
        """Put the job's id on ``tier.<tier>.<priority>`` at its tenant's fair level.

        ``traceparent`` (tracing on; the current span's by default, the API's ``job.submit``):
        the job's trace context goes in the message's headers, and under the job's id in Redis
        for a day, where a republished message, a retry and the webhooks find it
        (workers/job_spans.py).

        On a Redis broker the message is the queue's template with this job filled in, pushed
        as kombu would push it (workers/bulk_publish.py): the same message for a fraction of
        ``send_task``'s CPU, which was the largest single cost of a submission. A script
        counts the backlog and pushes the message in one round trip (:data:`PUBLISH_ONE`).
        """
        if traceparent is None and tracing.enabled():
            traceparent = tracing.current_traceparent()
        queue = tier_queue(tier, priority)
        template = self._template(queue, traceparent is not None)
        backlog_key = self.keys.tenant_backlog(tier)
        if template is None or not bulk_publish.ID_SAFE.fullmatch(job_id):
            if traceparent is not None:
                self.redis.set(self.keys.trace_context(job_id), traceparent, ex=tracing.CONTEXT_TTL_S)
            level = message_priority(priority, int(self.redis.hincrby(backlog_key, tenant_id, 1)))
            headers = {"traceparent": traceparent} if traceparent is not None else None
            self.celery.send_task(RUN_JOB_TASK, args=[job_id], queue=queue, priority=level, headers=headers)
            return
        base, levels = CLASS_LANES[priority]
        message = template.encode(job_id, bulk_publish.LEVEL_SLOT, traceparent or "")
        keys = [backlog_key, *priority_keys(queue)]
        args: list[str | int] = [tenant_id, base, levels, message]
        if traceparent is None:
            self._publish_one(keys=keys, args=args)
            return
        with self.redis.pipeline(transaction=False) as pipe:  # the context's copy rides along
            pipe.set(self.keys.trace_context(job_id), traceparent, ex=tracing.CONTEXT_TTL_S)
            self._publish_one(keys=keys, args=args, client=pipe)
            pipe.execute()

    def _template(self, queue: str, traced: bool = False) -> MessageTemplate | None:
        """The queue's message template, built on first use; None unless the broker is Redis."""
        if not self._redis_broker:
            return None
        template = self._templates.get((queue, traced))
        if template is None:  # two threads may both build it; either copy is the same
            template = MessageTemplate(self.celery, RUN_JOB_TASK, queue, traced)
            self._templates[queue, traced] = template
        return template

    def publish_many(self, job_ids: Sequence[str], tier: str, priority: str, tenant_id: str) -> None:
        """Publish many jobs of one tenant, tier and class: one backlog update, and the
        messages in pipelined round trips instead of one each (workers/bulk_publish.py)."""
        if not job_ids:
            return
        backlog = int(self.redis.hincrby(self.keys.tenant_backlog(tier), tenant_id, len(job_ids)))
        first = backlog - len(job_ids)
        queue = tier_queue(tier, priority)
        levels = [message_priority(priority, first + offset) for offset in range(1, len(job_ids) + 1)]
        template = self._template(queue)
        if template is None:
            self._publish_through_kombu(job_ids, queue, levels)
            return
        lists = priority_keys(queue)
        bulk_publish.push(
            self.redis,
            [
                (lists[level], template.encode(job_id, level))
                for job_id, level in zip(job_ids, levels, strict=True)
            ],
        )

    def _publish_through_kombu(self, job_ids: Sequence[str], queue: str, levels: list[int]) -> None:
        with self.celery.producer_or_acquire() as producer, producer.batch(max_size=PUBLISH_BATCH):
            for job_id, level in zip(job_ids, levels, strict=True):
                self.celery.send_task(
                    RUN_JOB_TASK, args=[job_id], queue=queue, priority=level, producer=producer
                )

    def defer(self, job_id: str, tier: str, priority: str, tenant_id: str, delay_s: float) -> None:
        """Publish the job in ``delay_s`` seconds (a short wait; long ones stay on the row).

        Not a Celery countdown: a worker holds countdown messages itself and raises its own
        prefetch for each, so a burst of waiting jobs piles up on one worker and only it can
        run them when they are due. A deferred job is an entry in a Redis sorted set until it
        is due, then an ordinary message that any free worker takes (:meth:`release_due`).
        """
        entry = json.dumps([job_id, tier, priority, tenant_id])
        self.redis.zadd(self.keys.deferred, {entry: time.time() + delay_s})

    def release_due(self, limit: int = 500) -> int:
        """Publish the deferred jobs that are due; each entry is taken by one caller only."""
        due = self._pop_due(keys=[self.keys.deferred], args=[time.time(), limit])
        for entry in due:
            self.publish(*json.loads(entry))
        return len(due)

    def taken(self, tier: str, tenant_id: str, pipe: Pipeline | None = None) -> None:
        """A worker took one of the tenant's jobs off the queue (queued on ``pipe`` if given)."""
        (self.redis if pipe is None else pipe).hincrby(self.keys.tenant_backlog(tier), tenant_id, -1)

    def reset_backlogs(self, tiers: list[str], counts: Mapping[tuple[str, str], int]) -> None:
        """Replace every tier's backlog counters with ``counts`` ((tier, tenant) -> queued)."""
        with self.redis.pipeline() as pipe:
            for tier in tiers:
                key = self.keys.tenant_backlog(tier)
                pipe.delete(key)
                mapping: dict[Any, Any] = {tenant: n for (t, tenant), n in counts.items() if t == tier}
                if mapping:
                    pipe.hset(key, mapping=mapping)
            pipe.execute()

    def queue_depths(self, tier: str) -> dict[str, int]:
        """Messages waiting on each of the tier's queues (all priority levels), by class."""
        with self.redis.pipeline(transaction=False) as pipe:
            for priority in PRIORITIES:
                for key in priority_keys(tier_queue(tier, priority)):
                    pipe.llen(key)
            lengths = pipe.execute()
        steps = len(PRIORITY_STEPS)
        return {p: sum(lengths[i * steps : (i + 1) * steps]) for i, p in enumerate(PRIORITIES)}
