"""Usage reports on a year of data: one month grouped by day and model, from the hourly rollups
against the same aggregation over the raw usage rows (and jobs) with their indexes.

Loads at least a million usage rows (bench/usage_workload.py, fixed seed) into a fresh
PostgreSQL database with COPY, builds the rollups with the backfill (workers/usage_rebuild.py),
then times ``GET /v1/usage``'s query (workers/usage_report.run_report) for the busiest tenant's
last whole month, warm, median of ``--runs``, both ways, and checks both give the same figures.

    make bench-usage        # or: python bench/usage_query.py --rows 1000000 --runs 20

Ends with ``usage_month_by_day_model_ms=<median> raw_ms=<median> ratio=<raw/rollup> rows=<n>``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import bench_paths  # noqa: F401  (puts the project on sys.path)
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from switchyard_side import create_database, drop_database
from usage_workload import JOB_COLUMNS, Workload, copy_chunk

from api.keys import create_key, create_tenant
from schemas.settings import load_settings
from schemas.tables import ApiKey
from schemas.usage_reports import UsageReport
from workers.db import make_engine
from workers.migrate import upgrade
from workers.usage_rebuild import rebuild_rollups
from workers.usage_report import UsageQuery, make_query, month_of, run_report

console = Console()
TARGET_MS = 200.0


def main() -> None:
    args = parse_args()
    url = create_database(args.admin_url)
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            settings = load_settings(database_url=url, var_dir=var_dir)
            upgrade(settings)
            engine = make_engine(settings)
            try:
                run(engine, url, args)
            finally:
                engine.dispose()
    finally:
        if not args.keep:
            drop_database(args.admin_url, url)


def run(engine: Engine, url: str, args: argparse.Namespace) -> None:
    tenants, keys = make_tenants(engine)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    workload = Workload(tenants, keys, end)
    load(url, workload, args.rows)
    started = time.perf_counter()
    written = rebuild_rollups(engine)
    rebuild_s = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    console.print(f"rollups built from the rows (the backfill) in {rebuild_s:.1f} s: {written:,} rows")
    start, month_end = month_of(end - timedelta(days=31))  # the last whole month
    query = make_query(tenants[0], start, month_end, ["day", "model"])
    rollup_ms, rollup = measure(engine, query, None, args.runs)
    raw_ms, raw = measure(engine, query, "raw", args.runs)
    same = rollup.rows == raw.rows and rollup.totals == raw.totals
    show(query, rollup_ms, raw_ms, len(rollup.rows), rollup.totals.calls, same)
    ratio = raw_ms / rollup_ms if rollup_ms else float("nan")
    print(
        f"usage_month_by_day_model_ms={rollup_ms:.2f} raw_ms={raw_ms:.2f} ratio={ratio:.1f} rows={args.rows}"
    )


def make_tenants(engine: Engine) -> tuple[list[str], dict[str, list[str]]]:
    """Four tenants with four API keys each."""
    with Session(engine) as session:
        tenants = []
        for name in ("acme", "globex", "initech", "umbrella"):
            tenant = create_tenant(session, name)
            session.flush()
            for index in range(4):
                create_key(session, tenant.id, {"read"}, name=f"{name}-{index}")
            tenants.append(tenant.id)
        session.commit()
        keys: dict[str, list[str]] = {tenant: [] for tenant in tenants}
        for key in session.exec(select(ApiKey).order_by(col(ApiKey.name))):
            keys[key.tenant_id].append(key.id)
    return tenants, keys


def load(url: str, workload: Workload, usage_rows: int) -> None:
    """COPY the workload's jobs and usage rows in, with a progress bar over the usage rows."""
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    started, jobs = time.perf_counter(), 0
    with psycopg.connect(url) as connection, Progress(*columns, console=console) as progress:
        task = progress.add_task("usage rows", total=usage_rows)
        for job_rows, usage in workload.chunks(usage_rows):
            copy_chunk(connection, JOB_COLUMNS, job_rows, usage)
            jobs += len(job_rows)
            progress.advance(task, len(usage))
    console.print(
        f"loaded {usage_rows:,} usage rows and {jobs:,} jobs in {time.perf_counter() - started:.0f} s"
    )


def measure(engine: Engine, query: UsageQuery, source: str | None, runs: int) -> tuple[float, UsageReport]:
    """The median of ``runs`` warm runs of the report, after three runs that warm the caches."""
    for _ in range(3):
        run_report(engine, query, source)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        report = run_report(engine, query, source)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), report


def show(query: UsageQuery, rollup_ms: float, raw_ms: float, groups: int, calls: int, same: bool) -> None:
    table = Table(title=f"One month ({query.start:%Y-%m}) of the busiest tenant, by day and model")
    for column in ("source", "median ms", "rows answered", "calls summed"):
        table.add_column(column, justify="right")
    table.add_row("rollups (GET /v1/usage)", f"{rollup_ms:.2f}", str(groups), f"{calls:,}")
    table.add_row("raw usage rows + jobs", f"{raw_ms:.2f}", str(groups), f"{calls:,}")
    console.print(table)
    verdict = "[green]under[/]" if rollup_ms < TARGET_MS else "[red]over[/]"
    console.print(
        f"rollups {verdict} the {TARGET_MS:.0f} ms target; raw / rollups = {raw_ms / rollup_ms:.1f}x"
    )
    console.print("both give the same figures" if same else "[red]the two sources disagree[/]")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage rows to load (at least 1,000,000)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each query (median)")
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL admin URL; a fresh database is made for the run and dropped after",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if args.rows < 1 or args.runs < 1:
        parser.error("--rows and --runs must be at least 1")
    return args


if __name__ == "__main__":
    main()
