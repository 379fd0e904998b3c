"""Shadow checks of semantic hits: the real call made anyway, and its answer compared.

A shadow is an ordinary job, inserted and published as precompute inserts its runs
(workers/precompute.py): the hit's tenant, tier and request, priority ``precompute`` (spare
capacity only), cache mode ``off`` (it calls the provider and stores nothing), no webhook,
and ``metadata.shadow_of`` naming the hit it checks. It is priced like any job: a shadow is
real spend. A Redis mark (``cache_shadow``) names the hit while the shadow waits; the shadow's
end takes it (GETDEL), so a check counts once and a job that only claims to be a shadow in its
metadata counts nothing.

Agreement: the two answers' MiniLM embeddings have a cosine of at least
``answer_agreement``, and no guard (workers/cache/guards/) finds a difference between them
(a negation, a figure, a date, a name, a direction...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis import Redis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from schemas.tables import Job
from workers import store
from workers.cache.guards import mismatch
from workers.cache.semantic import SemanticCache
from workers.dispatch import Dispatcher
from workers.keys import RedisKeys

SHADOW_OF = "shadow_of"
SHADOW_PRIORITY = "precompute"


@dataclass(frozen=True)
class Comparison:
    """Whether a shadow's answer agrees with the cached one, and why not."""

    agreed: bool
    similarity: float
    reason: str | None  # "below_agreement", or the guard that found a difference


def answer_text(result: dict[str, Any] | None) -> str:
    """The first choice's text; its tool calls as JSON when it has no text."""
    choices = (result or {}).get("choices") or [{}]
    message = choices[0].get("message") or {}
    content = message.get("content")
    if isinstance(content, str):
        return content
    return json.dumps(message.get("tool_calls") or content, sort_keys=True)


def compare_answers(semantic: SemanticCache, cached: str, fresh: str, agreement: float) -> Comparison:
    """Cosine of the answers' embeddings, then the guards on the answers."""
    a, b = semantic.embed(cached), semantic.embed(fresh)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    similarity = round(float(np.dot(a, b)) / norms, 4) if norms else 0.0
    if similarity < agreement:
        return Comparison(False, similarity, "below_agreement")
    reason = mismatch(cached, fresh)
    return Comparison(reason is None, similarity, reason)


def start_shadow(
    engine: Engine, dispatcher: Dispatcher, redis: Redis, keys: RedisKeys, hit: Job, ttl_s: int
) -> str:
    """Insert and publish the shadow of ``hit``; its id."""
    with Session(engine, expire_on_commit=False) as session:
        shadow = store.insert_job(
            session,
            tenant_id=hit.tenant_id,
            tier=hit.tier,
            kind=hit.kind,
            priority=SHADOW_PRIORITY,
            cache_mode="off",
            cache={"mode": "off", "ttl_s": 0, "key": None, "hit": None},
            request=hit.request,
            job_metadata={SHADOW_OF: hit.id},
            callback_url=None,
        )
        session.commit()
    # Marked before it is published, so its end always finds the mark; a crash in between
    # leaves a row the reconciler publishes (and, without the mark, a check not counted).
    redis.set(keys.cache_shadow(shadow.id), hit.id, ex=ttl_s)
    dispatcher.publish(shadow.id, shadow.tier, SHADOW_PRIORITY, shadow.tenant_id)
    store.mark_published(engine, [shadow.id])
    return shadow.id


def shadowed_hit(engine: Engine, redis: Redis, keys: RedisKeys, shadow: Job) -> Job | None:
    """The hit a finished shadow checks, taking its mark; None if it is not (or no longer) one."""
    claimed = (shadow.job_metadata or {}).get(SHADOW_OF)
    if not isinstance(claimed, str):
        return None
    marked = redis.getdel(keys.cache_shadow(shadow.id))
    if marked is None or marked.decode() != claimed:  # type: ignore[union-attr]
        return None
    hit = store.load_job(engine, claimed)
    return hit if hit is not None and hit.tenant_id == shadow.tenant_id else None
