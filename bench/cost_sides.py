"""The two sides of ``bench/cost.py``: the naive replay and the replay through Switchyard.

**Naive**: every request at once (a pool of client threads), synchronously, to the large
model with the ``openai`` SDK, no cache, as a demo calls a model inline. Each call is priced
from the usage the provider returned, at the config's prices for the large model
(``call_cost_usd``, the function Switchyard prices its own calls with).

**Switchyard**: the same requests through ``POST /v1/jobs`` on tier ``large`` with
``cache: "semantic"`` (the exact cache answers at the API, the semantic one in the worker),
in arrival waves: a wave is submitted at once, and the next starts when the wave's live jobs
are final, as traffic spread over a day would find earlier answers cached. Jobs that can wait
a day ride the provider Batch API lane and are awaited at the end. The cost is the sum of
``cost_usd`` over every job of the benchmark tenant, read from the database: shadow checks
of semantic hits (real calls) included.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from cost_stack import CostStack
from cost_workload import CostRequest, waves
from rich.progress import Progress
from sqlalchemy import select

from schemas.openai import CompletionUsage
from schemas.settings import ModelConfig
from workers.db import make_engine
from workers.middleware.usage import call_cost_usd
from workers.store import JOBS

FINAL = frozenset({"succeeded", "failed", "canceled"})
NAIVE_THREADS = 32
SUBMIT_THREADS = 16


def naive_costs(
    requests: list[CostRequest], emulator_url: str, model: ModelConfig, progress: Progress
) -> list[float]:
    """Each request's cost when sent straight to the large model, in the workload's order."""
    client = openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="emulator-key", max_retries=5)
    task = progress.add_task("naive: every request to the large model", total=len(requests))

    def call(request: CostRequest) -> float:
        body = request.request
        response = client.chat.completions.create(
            model=model.model, messages=body["messages"], max_tokens=body.get("max_tokens")
        )
        assert response.usage is not None
        progress.advance(task)
        return call_cost_usd(model, CompletionUsage.model_validate(response.usage.model_dump()))

    with ThreadPoolExecutor(NAIVE_THREADS) as pool:
        return list(pool.map(call, requests))


@dataclass
class Replay:
    """What the Switchyard replay submitted: job ids by request, and submissions refused."""

    job_ids: dict[int, str] = field(default_factory=dict)
    answered_at_once: int = 0  # exact hits: the API answered 200 with the finished job
    refusals: list[str] = field(default_factory=list)


def submit(client: httpx.Client, body: dict[str, Any], attempts: int = 20) -> httpx.Response:
    """POST a job; a 429 (admission control) is retried after its Retry-After."""
    for _ in range(attempts):
        response = client.post("/v1/jobs", json=body)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))
    return response


def wait_final(client: httpx.Client, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
    """Long-poll a job until it is final (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        response = client.get(f"/v1/jobs/{job_id}", params={"wait": round(min(20.0, max(remaining, 0)), 2)})
        job = dict(response.json())
        if job.get("status") in FINAL or remaining <= 0:
            return job


def replay(stack: CostStack, requests: list[CostRequest], wave: int, progress: Progress) -> Replay:
    """Send the workload through the API in waves; returns once every job is final."""
    done = Replay()
    task = progress.add_task("Switchyard: through the API", total=len(requests))
    parked: list[str] = []
    with stack.client() as client, ThreadPoolExecutor(SUBMIT_THREADS) as pool:

        def send(request: CostRequest) -> None:
            response = submit(client, {"tier": "large", "cache": "semantic", **request.body})
            if response.status_code not in (200, 202):
                done.refusals.append(f"request {request.index}: {response.status_code} {response.text[:200]}")
                return
            done.job_ids[request.index] = response.json()["id"]
            done.answered_at_once += response.status_code == 200

        for group in waves(requests, wave):
            list(pool.map(send, group))
            live = [done.job_ids[r.index] for r in group if r.index in done.job_ids and r.kind != "wait"]
            parked += [done.job_ids[r.index] for r in group if r.index in done.job_ids and r.kind == "wait"]
            list(pool.map(lambda job_id: wait_final(client, job_id), live))
            progress.advance(task, len(group))
        lane = progress.add_task("Switchyard: the Batch API lane's jobs", total=len(parked))
        for _ in pool.map(lambda job_id: wait_final(client, job_id), parked):
            progress.advance(lane)
    return done


@dataclass
class JobCosts:
    """The benchmark tenant's jobs as the database has them, and where their cost went."""

    rows: dict[str, dict[str, Any]]  # job id -> status, cost, model, lane, cache hit, routing

    @classmethod
    def read(cls, stack: CostStack, tenant_id: str) -> JobCosts:
        columns = (JOBS.c.id, JOBS.c.status, JOBS.c.cost_usd, JOBS.c.model, JOBS.c.cache)
        query = select(*columns, JOBS.c.provider_batch_id, JOBS.c.error_code, JOBS.c.routing)
        engine = make_engine(stack.settings)
        try:
            with engine.connect() as connection:
                found = connection.execute(query.where(JOBS.c.tenant_id == tenant_id)).mappings().all()
        finally:
            engine.dispose()
        return cls({row["id"]: dict(row) for row in found})

    @property
    def total_usd(self) -> float:
        return sum(float(row["cost_usd"] or 0) for row in self.rows.values())

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for row in self.rows.values():
            counts[f"{row['status']} {row['error_code'] or ''}".strip()] += 1
        return dict(counts)

    def by_path(self, job_ids: set[str]) -> dict[str, tuple[int, float]]:
        """(jobs, USD) by the path a job took; jobs not in ``job_ids`` are shadow checks."""
        paths: dict[str, list[float]] = defaultdict(list)
        for job_id, row in self.rows.items():
            paths[path_of(row, job_id in job_ids)].append(float(row["cost_usd"] or 0))
        return {name: (len(costs), sum(costs)) for name, costs in sorted(paths.items())}


def path_of(row: dict[str, Any], submitted: bool) -> str:
    """Where a job's cost went: a cache hit, the Batch API lane, or a live call of a model."""
    hit = (row["cache"] or {}).get("hit")
    if not submitted:
        return "shadow checks of semantic hits"
    if hit:
        return f"{hit} cache hit"
    if row["status"] != "succeeded":
        return f"{row['status']} ({row['error_code']})"
    lane = "Batch API lane" if row["provider_batch_id"] else "live"
    rule = (row["routing"] or {}).get("rule")
    return f"{row['model']}, {lane}" + (f", rule {rule}" if rule else "")


def costs_by_kind(
    requests: list[CostRequest], price: Callable[[CostRequest], float]
) -> dict[str, tuple[int, float]]:
    """(requests, USD) of each workload kind under ``price``."""
    kinds: dict[str, list[float]] = defaultdict(list)
    for request in requests:
        kinds[request.kind].append(price(request))
    return {kind: (len(costs), sum(costs)) for kind, costs in kinds.items()}
