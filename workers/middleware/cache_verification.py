"""Shadow checks of semantic hits in the worker (docs/caching.md, "A cache that watches itself").

After a semantic hit has been written and announced, a share of hits (``cache.shadow_share``)
starts a shadow job that makes the real call (workers/cache/shadows.py). When a shadow ends
with an answer, that answer is compared with the cached one and the check is recorded in the
namespace's counts, which may raise its threshold (workers/cache/verification.py).

Both happen in ``after_attempt``, once the attempt has settled: neither the hit's answer nor
the shadow's end waits for them. This middleware sits before ``ResultCaching`` in the chain,
so a hit (which ends the chain's ``before_call`` walk there) has entered it. A failure here is
logged and dropped: a check is worth less than the slot and the other cleanups that run after.
"""

from __future__ import annotations

import random

import structlog
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from schemas.errors import SwitchyardError
from workers.cache.results import ResultCache, semantic_entry
from workers.cache.shadows import SHADOW_OF, answer_text, compare_answers, shadowed_hit, start_shadow
from workers.chain import CallContext, Middleware
from workers.dispatch import Dispatcher

log = structlog.get_logger("switchyard.semantic_cache")


class ShadowVerification(Middleware):
    """Starts shadow calls for a share of semantic hits; compares their answers when they end."""

    def __init__(
        self, engine: Engine, dispatcher: Dispatcher, results: ResultCache, rng: random.Random | None = None
    ) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.results = results
        self._rng = rng or random.Random()

    def after_attempt(self, ctx: CallContext, settled: bool) -> None:
        if not settled:
            return
        try:
            if ctx.answered is not None:
                self._maybe_shadow(ctx)
            elif ctx.called and ctx.error is None and SHADOW_OF in (ctx.job.job_metadata or {}):
                self._verify(ctx)
        except (RedisError, SQLAlchemyError, SwitchyardError, RuntimeError) as exc:
            log.warning(
                "semantic_check_failed", job=ctx.job.id, error_type=type(exc).__name__, error=str(exc)
            )

    def _maybe_shadow(self, ctx: CallContext) -> None:
        share = ctx.settings.cache.shadow_share
        if share <= 0 or self._rng.random() >= share:
            return
        hit = ctx.job.model_copy(update=ctx.answered)
        if semantic_entry(hit) is None:
            return
        r = self.results
        shadow_id = start_shadow(
            self.engine, self.dispatcher, r.redis, r.keys, hit, ctx.settings.cache.verification_ttl_s
        )
        log.info("semantic_shadow_started", job=hit.id, shadow=shadow_id)

    def _verify(self, ctx: CallContext) -> None:
        r, shadow = self.results, ctx.job
        hit = shadowed_hit(self.engine, r.redis, r.keys, shadow)
        entry = semantic_entry(hit) if hit is not None else None
        if hit is None or entry is None or r.semantic is None or ctx.response is None:
            return
        fresh = answer_text(ctx.response.completion.model_dump(mode="json"))
        settings = ctx.settings.cache
        compared = compare_answers(r.semantic, answer_text(hit.result), fresh, settings.answer_agreement)
        recorded = r.verification.record(entry["namespace"], compared.agreed)
        log.info(
            "semantic_hit_checked",
            job=hit.id,
            shadow=shadow.id,
            agreed=compared.agreed,
            similarity=compared.similarity,
            reason=compared.reason,
            verified=recorded.verified,
            disagreed=recorded.disagreed,
        )
