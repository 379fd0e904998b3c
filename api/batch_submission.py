"""Accepting a batch: read every line, then insert the batch and its jobs in bulk, then publish.

Nothing is queued unless every line is valid (or the caller asked to skip bad lines). The
batch and its job rows are committed in one transaction before any message is published,
so a crash in between leaves queued rows the reconciler publishes. Lines the exact cache
answers are inserted finished and never queued.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from api.batch_lines import LineJob, LineReader, ParsedLines, reject_invalid
from api.budget_gate import refuse_if_exhausted
from api.job_limits import check_callback_url, known_tier
from api.keys import Principal, check_tiers
from api.services import Services
from schemas import errors
from schemas.tables import Batch, Job, utcnow
from workers import batch_store
from workers.broker import PUBLISH_FAILURES
from workers.cache import policy as cache_policy
from workers.cache.exact import request_key
from workers.ids import new_id
from workers.metrics.recording import record_invalid_lines, record_rows_ended, submission
from workers.store import COLUMNS
from workers.webhooks.ssrf import check_registered_url

COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
# The job columns with a non-null default; columns left out of a row are NULL.
JOB_DEFAULTS: dict[str, Any] = {
    COLUMNS[name]: value
    for name, value in Job.model_construct(id="").model_dump().items()
    if value is not None
}


@dataclass
class BatchOrder:
    """What the caller asked for, whichever form they used."""

    endpoint: str
    completion_window: str
    tier: str | None = None
    callback_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    skip_invalid_lines: bool = False
    input_file_id: str | None = None


def check_order(services: Services, order: BatchOrder) -> None:
    """The batch-wide fields, before any line is read."""
    if order.tier is not None and order.tier not in services.settings.auto_tiers:
        known_tier(services.settings, order.tier)  # an auto tier routes each line (docs/spend.md)
    if order.callback_url is not None:
        check_callback_url(order.callback_url)
        check_registered_url(order.callback_url, services.settings.webhooks)  # the SSRF guard
    size = len(json.dumps(order.metadata))
    if size > services.settings.max_metadata_bytes:
        raise errors.MetadataTooLarge(
            f"metadata is {size} bytes as JSON; at most {services.settings.max_metadata_bytes} are allowed.",
            max_metadata_bytes=services.settings.max_metadata_bytes,
        )


def reader_for(services: Services, order: BatchOrder) -> LineReader:
    """A line reader for the order's endpoint, tier and window."""
    check_order(services, order)
    return LineReader(
        services.settings, order.endpoint, order.tier, order.completion_window, metadata=order.metadata
    )


def submit_batch(services: Services, principal: Principal, order: BatchOrder, parsed: ParsedLines) -> Batch:
    """Insert the batch and its jobs, publish the queued ones; the new batch row. Its lines are
    counted as submissions (switchyard_jobs_*_total), the invalid ones refused with their code."""
    tier = parsed.tier or order.tier
    record_invalid_lines(services.settings, tier, (error.code for error in parsed.invalid))
    with submission(services.settings, tier, "batch", len(parsed.jobs)):
        return _submit(services, principal, order, parsed)


def _submit(services: Services, principal: Principal, order: BatchOrder, parsed: ParsedLines) -> Batch:
    if not order.skip_invalid_lines:
        reject_invalid(parsed)
    tier = parsed.tier or order.tier  # the tier asked for; its lines may be routed elsewhere
    check_tiers(principal, {tier} if tier else set())  # as for one job: before any routing
    services.admission.check_tenant_rate(principal)
    for routed in sorted({line.job.tier for line in parsed.jobs}):  # routing may split a batch
        services.admission.check_tier(routed, "batch")
        refuse_if_exhausted(services, principal, routed)  # 402 budget_exceeded, as for one job
    batch = _new_batch(principal, order, parsed, tier)
    hits = _look_up_cache(services, principal, parsed.jobs)
    rows = [_job_row(principal, batch, line, hit) for line, hit in zip(parsed.jobs, hits, strict=True)]
    with services.engine.begin() as connection:
        batch_store.insert_batch(connection, batch)
        batch_store.insert_jobs(connection, rows)
    record_rows_ended(row for row in rows if row["status"] != "queued")  # answered by the cache
    queued: dict[str, list[str]] = {}  # routed tier -> its queued jobs
    for row in rows:
        if row["status"] == "queued":
            queued.setdefault(row["tier"], []).append(row["id"])
    _publish(services, queued, batch)
    if batch.status == "failed":
        services.outcomes.fail_batch(batch.id)
    elif not queued:  # the exact cache answered every line: the batch is already done
        services.outcomes.end_batch(batch.id)
    return batch


def _new_batch(principal: Principal, order: BatchOrder, parsed: ParsedLines, tier: str | None) -> Batch:
    now = utcnow()
    window = COMPLETION_WINDOWS.get(order.completion_window)
    failed = not parsed.jobs  # only when every line was invalid and skipped
    return Batch(
        id=new_id("batch"),
        tenant_id=principal.tenant_id,
        tier=tier or "",
        endpoint=order.endpoint,
        completion_window=order.completion_window,
        status="failed" if failed else "in_progress",
        input_file_id=order.input_file_id,
        callback_url=order.callback_url,
        batch_metadata=order.metadata,
        total=parsed.total,
        invalid_lines=[error.as_dict() for error in parsed.invalid],
        created_at=now,
        in_progress_at=None if failed else now,
        failed_at=now if failed else None,
        expires_at=now + window if window else None,
    )


def _look_up_cache(services: Services, principal: Principal, lines: list[LineJob]) -> list[Any]:
    """Per line: (policy, key, hit); the exact lookups share pipelined round trips."""
    found: list[Any] = []
    probes: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for line in lines:
        body = line.job
        tier = services.settings.tiers[body.tier]
        policy = cache_policy.resolve(body.cache, body.cache_ttl, body.request, tier)
        request = body.request.model_dump(mode="json", exclude_none=True)
        key = request_key(principal.tenant_id, body.tier, request) if policy.enabled else None
        found.append([policy, key, request, None])
        if key is not None:
            probes.setdefault(body.tier, []).append((key, request))
    for tier_name, tier_probes in probes.items():  # one pipelined lookup per routed tier
        hits = iter(services.results.lookup_many(principal.tenant_id, tier_name, tier_probes))
        for line, entry in zip(lines, found, strict=True):
            if entry[1] is not None and line.job.tier == tier_name:
                entry[3] = next(hits)
    return found


def _job_row(principal: Principal, batch: Batch, line: LineJob, probe: list[Any]) -> dict[str, Any]:
    """The jobs-table row of one line (column names, nulls left out), finished on a cache hit."""
    policy, key, request, hit = probe
    now = batch.created_at
    cache = {"mode": policy.mode, "ttl_s": policy.ttl_s, "key": key, "hit": None}
    row: dict[str, Any] = {
        **JOB_DEFAULTS,
        "id": new_id("job"),
        "tenant_id": principal.tenant_id,
        "api_key_id": principal.key_id,
        "tier": line.job.tier,
        "routing": line.routing,
        "kind": line.job.kind,
        "priority": "batch",
        "cache_mode": policy.mode,
        "status": "queued",
        "request": request,
        "cache": cache,
        "attempt_log": [],
        "metadata": {},
        "batch_id": batch.id,
        "batch_line": line.index,
        "custom_id": line.custom_id,
        "created_at": now,
        "updated_at": now,
    }
    if line.job.completion_window is not None:
        row["completion_window"] = line.job.completion_window
    if hit is not None:
        row.update({COLUMNS[name]: value for name, value in hit.as_job_fields(cache).items()})
    return row


def _publish(services: Services, queued: dict[str, list[str]], batch: Batch) -> None:
    if "skip_publish_after_commit" in services.settings.inject_faults:
        return  # the fault: behave as if the process died between commit and publish
    for tier, job_ids in queued.items():
        try:
            services.dispatcher.publish_many(job_ids, tier, "batch", batch.tenant_id)
        except PUBLISH_FAILURES:
            # The rows are committed: the reconciler publishes them (docs/redis-loss.md).
            return
        for job_id in job_ids:
            services.publish_marks.add(job_id)
