"""The dashboard's load time on a busy database: ``dashboard_load_ms`` of ``bench/observability.py``.

A fresh PostgreSQL database gets ``--dashboard-jobs`` jobs of the last days with their usage
rows (``bench/dashboard_workload.py``, COPY) and the hourly rollups built from them (the
backfill), then the API starts on it. One load is what a browser does: ``GET /dashboard``, then
every asset the page names (scripts, styles, images served by the API), then every data call its
scripts make (the ``/v1/...`` paths found in them), assets and data calls six at a time as a
browser's connection pool would. The figure is the median of warm loads, for the platform
operator (every tenant) and for the busiest tenant's key; a second figure is the operator's page
in headless Chromium when it is installed (``bench/dashboard_browser.py``).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import bench_paths
import dashboard_browser
import httpx
import psycopg
from dashboard_workload import DASHBOARD_JOB_COLUMNS, RecentWorkload
from rich.progress import Progress
from sqlalchemy import text
from sqlmodel import Session
from switchyard_side import create_database, drop_database
from usage_query import make_tenants
from usage_workload import copy_chunk

from api.keys import create_key, create_platform_key
from infra.launch import ProcessGroup, api_argv, free_port, wait_http
from schemas.settings import load_settings
from workers.db import make_engine
from workers.migrate import upgrade
from workers.usage_rebuild import rebuild_rollups

PAGE = "/dashboard"
ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"'#?]+)[^"']*["']""", re.IGNORECASE)
# A data path in a script: "/v1/dashboard", '/v1/slo?x=1'; templated paths (${...}) are left out.
DATA_CALL = re.compile(r"""["'`](/v1/[A-Za-z0-9_/.-]+)(?:\?[^"'`$]*)?["'`]""")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
BROWSER_CONNECTIONS = 6


@dataclass
class PageLoads:
    """One viewer's timed loads: what was fetched and how long each whole load took."""

    viewer: str
    urls: list[str] = field(default_factory=list)
    load_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.load_ms) if self.load_ms else float("nan")


@dataclass
class DashboardFigures:
    """The dashboard part's figures: rows loaded, the load times of each viewer."""

    jobs: int
    usage_rows: int
    rollup_rows: int
    load_s: float
    operator: PageLoads
    tenant: PageLoads
    browser_ms: float | None = None  # headless Chromium, the operator's view; None: no browser here


def fill_database(url: str, var_dir: Path, jobs: int, progress: Progress) -> tuple[int, int, dict[str, str]]:
    """Migrate, make tenants and keys, COPY ``jobs`` jobs in and build the rollups.

    Returns (usage rows, rollup rows, {viewer: key}).
    """
    settings = load_settings(database_url=url, var_dir=var_dir)
    upgrade(settings)
    engine = make_engine(settings)
    try:
        tenants, keys = make_tenants(engine)
        with Session(engine) as session:
            viewers = {
                "operator": create_platform_key(session),
                "tenant": create_key(session, tenants[0], {"read"}),
            }
            session.commit()
        workload = RecentWorkload(tenants, keys, datetime.now(UTC))
        usage_rows = copy_rows(url, workload, jobs, progress)
        rollups = rebuild_rollups(engine)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return usage_rows, rollups, viewers


def copy_rows(url: str, workload: RecentWorkload, jobs: int, progress: Progress) -> int:
    """COPY the workload's jobs and usage rows in; the usage rows written."""
    task = progress.add_task(f"dashboard: {jobs:,} jobs into PostgreSQL", total=jobs)
    written = 0
    with psycopg.connect(url) as connection:
        for job_rows, usage in workload.jobs(jobs):
            copy_chunk(connection, DASHBOARD_JOB_COLUMNS, job_rows, usage)
            written += len(usage)
            progress.advance(task, len(job_rows))
    return written


def page_parts(client: httpx.Client) -> tuple[list[str], list[str]]:
    """The page's assets and data calls, read from ``/dashboard`` and its scripts."""
    page = client.get(PAGE)
    page.raise_for_status()
    named = [path for path in ASSET.findall(page.text) if not SCHEME.match(path)]  # data:, https:
    assets = sorted({urljoin(PAGE, path) for path in named})
    sources = [page.text]
    for asset in assets:
        answer = client.get(asset)
        answer.raise_for_status()
        if asset.endswith(".js") or "javascript" in answer.headers.get("content-type", ""):
            sources.append(answer.text)
    calls = sorted({path for source in sources for path in DATA_CALL.findall(source)})
    return assets, calls


def one_load(client: httpx.Client, pool: ThreadPoolExecutor, assets: list[str], calls: list[str]) -> float:
    """One whole load as a browser does it, in milliseconds; raises on any answer but 200."""
    started = time.perf_counter()
    client.get(PAGE).raise_for_status()
    for wave in (assets, calls):
        for answer in pool.map(client.get, wave):
            answer.raise_for_status()
            _ = answer.content
    return (time.perf_counter() - started) * 1000


def time_loads(api_url: str, viewer: str, key: str, runs: int) -> PageLoads:
    """Two loads to warm up, then ``runs`` timed loads by ``viewer``."""
    loads = PageLoads(viewer)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=BROWSER_CONNECTIONS)
    with (
        httpx.Client(base_url=api_url, headers=headers, timeout=60, limits=limits) as client,
        ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool,
    ):
        assets, calls = page_parts(client)
        loads.urls = [PAGE, *assets, *calls]
        for run in range(runs + 2):
            elapsed = one_load(client, pool, assets, calls)
            if run >= 2:
                loads.load_ms.append(elapsed)
    return loads


def measure(admin_url: str, redis_url: str, jobs: int, runs: int, progress: Progress) -> DashboardFigures:
    """Fill a fresh database, start the API on it, time both viewers' loads; drop the database."""
    url = create_database(admin_url)
    try:
        with tempfile.TemporaryDirectory(prefix="switchyard-bench-dashboard-") as var_dir:
            started = time.perf_counter()
            usage_rows, rollups, keys = fill_database(url, Path(var_dir), jobs, progress)
            load_s = time.perf_counter() - started
            procs = ProcessGroup(Path(var_dir), bench_paths.process_env())
            port = free_port()
            env = {
                "SWITCHYARD_DATABASE_URL": url,
                "SWITCHYARD_REDIS_URL": redis_url,
                "SWITCHYARD_VAR_DIR": var_dir,
                "SWITCHYARD_KEY_PREFIX": f"sydash{port}",
            }
            procs.start("api", api_argv(port, log_level="warning"), env=env)
            try:
                api_url = f"http://127.0.0.1:{port}"
                wait_http(f"{api_url}/readyz", alive=procs.check_alive)
                task = progress.add_task(f"dashboard: {runs} warm loads per viewer", total=2 * runs)
                timed = {}
                for viewer, key in keys.items():
                    timed[viewer] = time_loads(api_url, viewer, key, runs)
                    progress.advance(task, runs)
                browser_ms = dashboard_browser.median_ms(api_url, keys["operator"], runs)
            finally:
                procs.stop_all()
    finally:
        drop_database(admin_url, url)
    return DashboardFigures(jobs, usage_rows, rollups, load_s, timed["operator"], timed["tenant"], browser_ms)
