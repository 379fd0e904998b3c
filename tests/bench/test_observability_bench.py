"""``bench/observability.py --quick``: both deployments, the scrapes and the dashboard, with real processes.

It checks that the benchmark runs end to end and ends with the issue's line, with figures that
make sense: every job of the "on" side counted once by the scraped ``switchyard_jobs_ended_total``,
spans reaching the OTLP sink (tracing was really on), a throughput ratio near 1 and a dashboard
load time measured over the page and its data calls. The dashboard's data is checked too: the
generated jobs are in order of creation and mix every status the dashboard shows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests_support import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from dashboard_workload import CREATED, STATUS, RecentWorkload  # noqa: E402

END_LINE = re.compile(
    r"^metrics_throughput_ratio=(?P<ratio>[\d.]+) metrics_jobs_counted=(?P<counted>\d+) "
    r"jobs=(?P<jobs>\d+) dashboard_load_ms=(?P<load>[\d.]+)$"
)


@pytest.mark.e2e
def test_the_quick_observability_benchmark_ends_with_the_issues_line(redis_url: str) -> None:
    command = [sys.executable, "bench/observability.py", "--quick", "--redis-url", redis_url]
    command += ["--admin-url", POSTGRES_ADMIN_URL]
    wide = {**os.environ, "COLUMNS": "240"}  # rich wraps its lines at the terminal's width
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, env=wide)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    found = END_LINE.match(lines[-1])
    assert found, lines[-1]
    assert int(found["jobs"]) == 100
    assert int(found["counted"]) == 100  # exact: no job missed or counted twice
    assert 0.2 < float(found["ratio"]) < 5.0  # both sides ran; 2 rounds of 50 jobs are noisy
    assert 0 < float(found["load"]) < 60_000
    spans = re.search(r"spans received by the OTLP sink: ([\d,]+)", done.stdout)
    assert spans and int(spans[1].replace(",", "")) > 0, done.stdout


def test_the_dashboard_workload_is_recent_ordered_and_mixes_every_status() -> None:
    end, tenants = datetime.now(UTC), ["t1", "t2", "t3", "t4"]
    workload = RecentWorkload(
        tenants, {tenant: [f"{tenant}-key{n}" for n in range(4)] for tenant in tenants}, end, days=1
    )
    jobs = [job for chunk, _ in workload.jobs(20_000, chunk=5_000) for job in chunk]
    assert len(jobs) == 20_000
    created = [job[CREATED] for job in jobs]
    assert created == sorted(created)
    assert end - timedelta(days=1) <= created[0] and created[-1] <= end
    statuses = Counter(job[STATUS] for job in jobs)
    assert set(statuses) == {"succeeded", "failed", "canceled", "queued", "running"}
    assert statuses["succeeded"] > 0.9 * len(jobs)
