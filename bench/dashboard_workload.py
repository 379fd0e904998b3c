"""The last days of a busy deployment, for the dashboard's load time: jobs and their usage rows.

It is ``bench/usage_workload.py``'s year (same tenants, keys, tiers, models, cache hits, 429
retries and provider errors, fixed seed) squeezed into the last ``days`` days up to now, with
what a dashboard shows on top:

- each call's latency drawn per tier (lognormal: small ~0.6 s, large ~2 s, local ~1.2 s), and
  the job's end-to-end latency from its calls;
- failed jobs spread over the real error codes, with a message;
- jobs made in order of creation, evenly over the window;
- 0.5 % of jobs canceled before they ran, and jobs created in the last two minutes still queued
  or running (no usage rows yet).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from usage_workload import JOB_COLUMNS, Workload

# The columns the year's generator leaves at their defaults, and their place in a job row.
EXTRA_JOB_COLUMNS = ("error_code", "error_message", "latency_ms")
DASHBOARD_JOB_COLUMNS = (*JOB_COLUMNS, *EXTRA_JOB_COLUMNS)
STATUS, MODEL, PROVIDER, CACHE, ATTEMPTS = 6, 8, 9, 13, 14
CREATED, STARTED, FINISHED = 19, 20, 21
LATENCY, OUTCOME = 9, 10  # in a usage row
MEDIAN_CALL_S = {"small": 0.6, "large": 2.0, "local": 1.2}
FAILURE_CODES = (
    "provider_error",
    "provider_unavailable",
    "provider_timeout",
    "max_attempts",
    "invalid_output",
)
STILL_OPEN = timedelta(minutes=2)


@dataclass
class RecentWorkload(Workload):
    """The year's workload over the last ``days`` days, with latencies, error codes and open jobs."""

    days: int = 7
    total: int = 1

    def _moment(self) -> Any:
        # Evenly spread and in order of creation, as a live system writes them: the newest rows
        # by id are the newest in time, which the dashboard's queries rely on.
        share = min(1.0, (self.made - 1 + self.rng.random()) / self.total)
        return self.end - timedelta(seconds=(1 - share) * self.days * 86_400)

    def jobs(
        self, count: int, chunk: int = 10_000
    ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """(job rows, usage rows) in chunks of ``chunk`` jobs until ``count`` jobs are made."""
        made, self.total = 0, count
        while made < count:
            size = min(chunk, count - made)
            jobs: list[tuple[Any, ...]] = []
            calls: list[tuple[Any, ...]] = []
            for _ in range(size):
                job, job_calls = self.dashboard_job()
                jobs.append(job)
                calls.extend(job_calls)
            made += size
            yield jobs, calls

    def dashboard_job(self) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """One job row (with the extra columns) and its usage rows."""
        row, drawn = self.job()
        job, calls = list(row), [list(call) for call in drawn]
        median_s = MEDIAN_CALL_S[job[2]]
        for call in calls:
            call[LATENCY] = round(self.rng.lognormvariate(math.log(median_s * 1000), 0.5), 1)
        latency = sum(call[LATENCY] for call in calls) + 25.0 if calls else 8.0
        error: tuple[str | None, str | None] = (None, None)
        if job[STATUS] == "failed":
            code = self.rng.choice(FAILURE_CODES)
            calls[-1][OUTCOME] = code
            error = (code, f"the provider call ended with {code}")
        if self.end - job[CREATED] < STILL_OPEN:
            self._still_open(job)
            calls, latency, error = [], None, (None, None)
        elif self.rng.random() < 0.005:
            job[STATUS], job[MODEL], job[PROVIDER], job[CACHE], job[ATTEMPTS] = (
                "canceled",
                None,
                None,
                None,
                0,
            )
            job[10:13] = [0, 0, 0.0]
            calls, latency = [], None
        return (*job, *error, latency), [tuple(call) for call in calls]

    def _still_open(self, job: list[Any]) -> None:
        """A job created in the last minutes: queued, or running its first attempt."""
        running = self.rng.random() < 0.5
        job[STATUS] = "running" if running else "queued"
        job[MODEL], job[PROVIDER], job[CACHE] = None, None, None
        job[10:13] = [0, 0, 0.0]
        job[ATTEMPTS] = 1 if running else 0
        job[STARTED] = job[CREATED] if running else None
        job[FINISHED] = None
