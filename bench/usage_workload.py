"""A year of usage for a few tenants, generated with a fixed seed, as rows ready for COPY.

What it looks like (docs/performance.md, "Usage reports"):
- four tenants with a skewed share of the traffic (55 %, 25 %, 13 %, 7 %), four API keys each
  (50 / 30 / 15 / 5 %);
- tiers small (60 %), large (25 %) and local (15 %), each with its models and providers; a job
  goes to the tier's second model one time in five;
- 80 % live, 20 % batch priority; one job in ten belongs to one of 200 batches; metadata with a
  team and a document type;
- over 365 days ending at the current hour, busier in working hours (UTC) and growing through
  the year (the last day twice as busy as the first);
- 12 % of jobs answered by the exact cache (no call; the cost saved recorded on the job),
  8 % retried once after a 429 (two calls), 2 % failed after a provider error.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

# (model, provider, input $/Mtok, output $/Mtok) per tier, the tier's weight first.
TIERS = {
    "small": (0.60, [("gpt-4o-mini", "openai", 0.15, 0.60), ("claude-haiku", "anthropic", 0.80, 4.0)]),
    "large": (0.25, [("gpt-4o", "openai", 2.50, 10.0), ("claude-sonnet", "anthropic", 3.0, 15.0)]),
    "local": (0.15, [("smollm2", "local", 0.0, 0.0), ("smollm2-q8", "local", 0.0, 0.0)]),
}
TENANT_SHARES = (0.55, 0.25, 0.13, 0.07)
KEY_SHARES = (0.50, 0.30, 0.15, 0.05)
TEAMS = ("search", "support", "ads", "legal", "growth", "data")
DOC_TYPES = ("invoice", "contract", "email", "ticket")
# Working hours (UTC) carry three times the night's traffic.
HOUR_WEIGHTS = [3.0 if 8 <= hour < 20 else 1.0 for hour in range(24)]
JOB_COLUMNS = (
    "id", "tenant_id", "tier", "kind", "priority", "cache_mode", "status", "request", "model",
    "provider", "prompt_tokens", "completion_tokens", "cost_usd", "cache", "attempts", "attempt_log",
    "metadata", "api_key_id", "batch_id", "created_at", "started_at", "finished_at", "updated_at",
)  # fmt: skip
USAGE_COLUMNS = (
    "job_id", "tenant_id", "tier", "model", "provider", "attempt", "prompt_tokens",
    "completion_tokens", "cost_usd", "latency_ms", "outcome", "created_at",
)  # fmt: skip


TENANT_CUMULATIVE = list(accumulate(TENANT_SHARES))
KEY_CUMULATIVE = list(accumulate(KEY_SHARES))


@dataclass
class Draw:
    """One job being drawn: who, on which tier, when."""

    job_id: str
    tenant: str
    tier: str
    at: datetime

    def calls(
        self, model: str, provider: str, tokens: tuple[int, int, float], retried: bool, failed: bool
    ) -> list[tuple[Any, ...]]:
        """Its usage rows: a 429 first if ``retried``, then the answer or a provider error."""
        rows: list[tuple[Any, ...]] = []
        if retried:
            rows.append(self._call(model, provider, len(rows) + 1, (0, 0, 0.0), "rate_limited", 0))
        outcome = "provider_error" if failed else "ok"
        rows.append(self._call(model, provider, len(rows) + 1, (0, 0, 0.0) if failed else tokens, outcome, 2))
        return rows

    def _call(
        self,
        model: str,
        provider: str,
        attempt: int,
        tokens: tuple[int, int, float],
        outcome: str,
        after_s: int,
    ) -> tuple[Any, ...]:
        at = self.at + timedelta(seconds=after_s)
        return (self.job_id, self.tenant, self.tier, model, provider, attempt, *tokens, 420.0, outcome, at)


@dataclass
class Workload:
    """The generator's state: tenants and keys to draw from, and where the year ends."""

    tenants: list[str]
    keys: dict[str, list[str]]
    end: datetime
    seed: int = 18
    rng: random.Random = field(init=False)
    made: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        days = 365
        self._day_weights = list(accumulate(1.0 + day / days for day in range(days)))
        self._hour_weights = list(accumulate(HOUR_WEIGHTS))
        self._tier_weights = list(accumulate(weight for weight, _ in TIERS.values()))

    def chunks(
        self, usage_rows: int, chunk: int = 20_000
    ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """(job rows, usage rows) in chunks until ``usage_rows`` usage rows are made."""
        made = 0
        while made < usage_rows:
            jobs: list[tuple[Any, ...]] = []
            calls: list[tuple[Any, ...]] = []
            while len(calls) < chunk and made + len(calls) < usage_rows:
                job, job_calls = self.job()
                jobs.append(job)
                calls.extend(job_calls)
            made += len(calls)
            yield jobs, calls

    def job(self) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """One job row and its usage rows."""
        rng = self.rng
        self.made += 1
        job = Draw(
            job_id=f"job_bench{self.made:012d}",
            tenant=rng.choices(self.tenants, cum_weights=TENANT_CUMULATIVE)[0],
            tier=rng.choices(list(TIERS), cum_weights=self._tier_weights)[0],
            at=self._moment(),
        )
        key = rng.choices(self.keys[job.tenant], cum_weights=KEY_CUMULATIVE)[0]
        model, provider, input_price, output_price = TIERS[job.tier][1][0 if rng.random() < 0.8 else 1]
        prompt, completion = int(rng.lognormvariate(6.2, 0.6)), int(rng.lognormvariate(4.8, 0.7))
        cost = round((prompt * input_price + completion * output_price) / 1_000_000, 8)
        fate = rng.random()
        if fate < 0.12:  # an exact-cache hit: no call, the cost it saved on the job
            cache = {"mode": "exact", "hit": "exact", "source_job": "job_earlier", "saved_usd": cost}
            ended = ("succeeded", model, provider, 0, 0, 0.0, json.dumps(cache))
            calls: list[tuple[Any, ...]] = []
        else:
            calls = job.calls(
                model, provider, (prompt, completion, cost), retried=fate < 0.20, failed=fate > 0.98
            )
            failed = fate > 0.98
            answered = (None, None, 0, 0, 0.0) if failed else (model, provider, prompt, completion, cost)
            ended = ("failed" if failed else "succeeded", *answered, None)
        status, model_used, provider_used, prompt_used, completion_used, cost_used, cache_json = ended
        metadata = {"team": rng.choice(TEAMS), "doc_type": rng.choice(DOC_TYPES)}
        batch = f"batch_bench{rng.randrange(200):04d}" if rng.random() < 0.1 else None
        finished = job.at + timedelta(seconds=3)
        row = (
            job.job_id, job.tenant, job.tier, "chat", "batch" if rng.random() < 0.2 else "live", "exact",
            status, '{"messages": []}', model_used, provider_used, prompt_used, completion_used, cost_used,
            cache_json, len(calls), "[]", json.dumps(metadata), key, batch, job.at, job.at, finished,
            finished,
        )  # fmt: skip
        return row, calls

    def _moment(self) -> datetime:
        rng = self.rng
        day = rng.choices(range(365), cum_weights=self._day_weights)[0]
        hour = rng.choices(range(24), cum_weights=self._hour_weights)[0]
        start = self.end - timedelta(days=365 - day)
        return start.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(
            seconds=rng.randrange(3600)
        )


def copy_chunk(
    connection: Any, job_columns: Sequence[str], job_rows: Sequence[Any], usage: Sequence[Any]
) -> None:
    """COPY one chunk of jobs, then their usage rows, and commit (jobs first: usage rows refer to them)."""
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY jobs ({', '.join(job_columns)}) FROM STDIN") as copy:
            for row in job_rows:
                copy.write_row(row)
        with cursor.copy(f"COPY usage ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in usage:
                copy.write_row(row)
    connection.commit()
