"""A caller's word that a semantic hit was wrong: ``POST /v1/jobs/{id}/feedback``.

``{"cache": "wrong"}`` on a job a semantic hit answered evicts the entry that answered it
(its ``:entry:<id>`` key; lookups skip entries whose answer is gone), records the (query,
cached question) pair as a negative so the two are never matched again, even when the
question is cached anew, and counts one check that disagreed in the namespace's estimate.
Feedback repeated on the same job evicts and records again (harmless) but counts once.
"""

from __future__ import annotations

from typing import Any

from schemas.errors import SwitchyardError
from schemas.tables import Job
from workers.cache.namespaces import conversation_text
from workers.cache.results import ResultCache, semantic_entry


class NotASemanticHit(SwitchyardError):
    """Feedback on the cache of a job that no semantic hit answered."""

    status_code = 409
    code = "not_a_semantic_hit"


def report_wrong_hit(results: ResultCache, job: Job, ttl_s: int) -> dict[str, Any]:
    """Evict, remember the negative, count once; what was done."""
    entry = semantic_entry(job)
    if entry is None or results.semantic is None:
        raise NotASemanticHit(
            "Only a job answered by the semantic cache (`cache.hit: semantic`) takes cache feedback.",
            hit=(job.cache or {}).get("hit"),
        )
    ns = entry["namespace"]
    evicted = results.semantic.forget_match(
        ns, conversation_text(job.request), entry["id"], entry["question"]
    )
    first = bool(results.redis.set(results.keys.cache_feedback(job.id), 1, nx=True, ex=ttl_s))
    if first:
        results.verification.record(ns, agreed=False)
    return {"job_id": job.id, "evicted": evicted, "negative_recorded": True, "counted": first}
