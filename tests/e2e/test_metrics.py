"""End to end: after N jobs, the scraped counters say N.

The stack's API and worker nodes each serve their metrics (the emulator tiers' worker is a
prefork pool of two processes, so its counts are summed over multiprocess files; the local
model's and the webhooks' workers are threads pools). N jobs of every kind (fresh calls, a
retry, a failure, exact-cache hits answered by the API) are scraped before and after; the
differences must equal N, and the tokens and cost the usage table holds.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import httpx
from e2e_stack import Stack
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlmodel import Session, col, select

from infra.launch import wait_http
from schemas.tables import Job, Usage
from workers.db import make_engine

TIERS = ("small", "retry", "bad")
FRESH = 33  # plain calls; with the cached original, its 4 hits, the retry and the failure: 40
HITS = 4
N = FRESH + 1 + HITS + 1 + 1
Samples = defaultdict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(stack: Stack) -> Samples:
    """Every sample of the API's /metrics and each worker node's, summed over processes."""
    urls = [f"{stack.api_url}/metrics"] + [
        f"http://127.0.0.1:{port}/metrics" for port in stack.metrics_ports.values()
    ]
    total: Samples = defaultdict(float)
    for url in urls:
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, (url, response.text)
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                total[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    return total


def in_tiers(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over our tiers' series matching ``labels``."""
    return sum(
        value
        for (sample_name, pairs), value in samples.items()
        if sample_name == name and dict(pairs).get("tier") in TIERS and labels.items() <= dict(pairs).items()
    )


def wait_quiet(stack: Stack, timeout: float = 60.0) -> None:
    """Wait until no job of our tiers is open, so only this test's jobs move the counters."""
    engine = make_engine(stack.settings)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with Session(engine) as session:
                open_jobs = session.exec(
                    select(func.count())
                    .select_from(Job)
                    .where(col(Job.tier).in_(TIERS), col(Job.status).in_(("queued", "running")))
                ).one()
            if open_jobs == 0:
                return
            assert time.monotonic() < deadline, f"{open_jobs} jobs of {TIERS} still open"
            time.sleep(0.5)
    finally:
        engine.dispose()


def usage_of(stack: Stack, job_ids: Iterable[str]) -> tuple[int, int, int, float]:
    """Calls, prompt tokens, completion tokens and cost of the jobs, from the usage table."""
    engine = make_engine(stack.settings)
    try:
        with Session(engine) as session:
            rows = session.exec(select(Usage).where(col(Usage.job_id).in_(list(job_ids)))).all()
    finally:
        engine.dispose()
    return (
        len(rows),
        sum(row.prompt_tokens for row in rows),
        sum(row.completion_tokens for row in rows),
        sum(row.cost_usd for row in rows),
    )


def run_jobs(e2e: Stack) -> dict[str, dict[str, Any]]:
    """N jobs of every kind, each waited for; id -> final job."""
    tag = uuid.uuid4().hex[:8]
    e2e.emulator(
        "POST", "/emulator/faults", json={"model": "emu-retry", "responses": [500], "mode": "sequence"}
    )
    e2e.emulator("POST", "/emulator/faults", json={"model": "emu-bad", "responses": [400], "mode": "always"})
    submitted = [e2e.submit("small", f"metrics {tag} job {i}") for i in range(FRESH)]
    submitted.append(e2e.submit("retry", f"metrics {tag} retried"))
    submitted.append(e2e.submit("bad", f"metrics {tag} refused by the provider"))
    question = f"metrics {tag}: what is cached?"
    submitted.append(e2e.submit("small", question, cache="exact"))
    done = {job["id"]: e2e.wait_final(job["id"]) for job in submitted}
    body = {
        "tier": "small",
        "cache": "exact",
        "request": {"messages": [{"role": "user", "content": question}]},
    }
    for _ in range(HITS):
        hit = e2e.post("/v1/jobs", e2e.keys["a"], json=body)
        assert hit.status_code == 200 and hit.json()["cache"]["hit"] == "exact", hit.text
        done[hit.json()["id"]] = hit.json()
    return done


def test_after_n_jobs_the_scraped_totals_say_n(e2e: Stack) -> None:
    for port in e2e.metrics_ports.values():  # a node serves once it has booted
        wait_http(f"http://127.0.0.1:{port}/metrics", timeout=120, alive=e2e.processes.check_alive)
    wait_quiet(e2e)
    before = scrape(e2e)
    done = run_jobs(e2e)
    wait_quiet(e2e)
    after = scrape(e2e)

    def delta(name: str, **labels: str) -> float:
        return in_tiers(after, name, **labels) - in_tiers(before, name, **labels)

    statuses = Counter(str(job["status"]) for job in done.values())
    assert len(done) == N and statuses == {"succeeded": N - 1, "failed": 1}
    assert delta("switchyard_jobs_submitted_total") == N
    assert delta("switchyard_jobs_accepted_total") == N
    assert delta("switchyard_jobs_ended_total") == N
    assert delta("switchyard_jobs_ended_total", status="succeeded") == N - 1
    assert delta("switchyard_jobs_ended_total", status="failed", error_code="provider_bad_request") == 1
    assert delta("switchyard_job_duration_seconds_count") == N
    # Claimed by a worker: every job but the API's cache hits.
    assert delta("switchyard_job_queue_wait_seconds_count") == N - HITS
    assert delta("switchyard_cache_lookups_total", kind="exact", outcome="hit") == HITS
    assert delta("switchyard_cache_lookups_total", kind="exact", outcome="miss") == 1
    assert delta("switchyard_retries_total") == 1

    calls, prompt, completion, cost = usage_of(e2e, done)
    assert calls == N - HITS + 1  # the retried job called twice
    assert delta("switchyard_provider_call_seconds_count") == calls
    assert delta("switchyard_tokens_total", direction="prompt") == prompt
    assert delta("switchyard_tokens_total", direction="completion") == completion
    assert abs(delta("switchyard_cost_usd_total") - cost) < 1e-6
    assert (
        abs(delta("switchyard_cache_savings_usd_total", kind="exact") - HITS * _cost_of_original(done)) < 1e-6
    )


def _cost_of_original(done: dict[str, dict[str, Any]]) -> float:
    hits = [job for job in done.values() if (job.get("cache") or {}).get("hit") == "exact"]
    return float(done[hits[0]["cache"]["source_job"]]["cost_usd"])
