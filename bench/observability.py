"""What watching Switchyard costs: throughput with metrics and tracing on against both off, and
the dashboard's load time with 100,000 jobs in the database.

1. Two deployments side by side (``bench/observed_stack.py``): the same API, prefork worker node,
   tier configuration, Redis db and provider emulator (a small fixed latency), one with the
   metrics on (the API's ``/metrics``, the worker node's own port in multiprocess mode) and
   traces exported over OTLP/HTTP to a local sink, the other with both off. After a warm-up,
   ``--jobs`` jobs per side run in ``--rounds`` alternating rounds (on, off, off, on, ...: the
   side that goes first alternates), each round many jobs in flight from ``--threads`` clients;
   the idle side waits meanwhile. ``metrics_throughput_ratio`` is the on side's jobs/s over the
   off side's, over all rounds.
2. ``/metrics`` of the on side's API and worker node, scraped after the warm-up and at the end:
   ``metrics_jobs_counted`` is the growth of ``switchyard_jobs_ended_total`` (every process and
   label of its tier), which must equal the jobs it ran.
3. ``bench/dashboard_load.py``: a fresh PostgreSQL database with ``--dashboard-jobs`` jobs of the
   last days, the API on it, the page and its data calls loaded as a browser does, warm, median.

Ends with ``metrics_throughput_ratio=<on/off> metrics_jobs_counted=<n> jobs=<n> dashboard_load_ms=<ms>``.
Run: ``.venv/bin/python bench/observability.py`` (``make bench-observability``); ``--quick``: 100 jobs
and 5,000 dashboard jobs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import bench_paths  # noqa: F401  (puts the project on sys.path)
import dashboard_load
import observability_report
import observed_stack
import structlog
from cost_stack import forget_keys
from cpu_usage import cpu_delta, cpu_snapshot
from observability_report import Figures
from overhead import sigterm_as_exit
from results import SideResult, split
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from switchyard_side import drop_database

console = Console()
WARM_ROUND = 200  # jobs of each side's unmeasured round with jobs in flight
QUICK = {"jobs": 100, "rounds": 2, "warmup": 10, "dashboard_jobs": 5_000, "dashboard_runs": 3}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/observability.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per side, alternating on and off")
    parser.add_argument("--threads", type=int, default=16, help="client threads submitting and waiting")
    parser.add_argument("--warmup", type=int, default=40, help="round trips per side before measuring")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="the emulator's fixed latency")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork processes of each worker node")
    parser.add_argument(
        "--dashboard-jobs", type=int, default=100_000, help="jobs in the dashboard's database"
    )
    parser.add_argument(
        "--trace-ratio", type=float, default=1.0, help="share of jobs the on side traces (1: all)"
    )
    parser.add_argument("--dashboard-runs", type=int, default=10, help="timed warm loads of the dashboard")
    parser.add_argument("--skip-dashboard", action="store_true", help="only the throughput part")
    parser.add_argument("--quick", action="store_true", help="100 jobs in 2 rounds, 5,000 dashboard jobs")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="its bench keys are deleted")
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL admin URL: fresh databases are made for the run and dropped after",
    )
    parser.add_argument("--keep", action="store_true", help="keep the process logs")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    if not 0 < args.trace_ratio <= 1:
        parser.error("--trace-ratio must be in (0, 1]")
    for name in ("jobs", "rounds", "threads", "concurrency", "dashboard_jobs", "dashboard_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def progress_bars() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def rounds(
    stack: observed_stack.Stack, args: argparse.Namespace, progress: Progress
) -> dict[str, SideResult]:
    """The alternating rounds: ``on`` first in even rounds, ``off`` first in odd ones."""
    results = {label: SideResult(label, side.processes) for label, side in stack.sides.items()}
    task = progress.add_task(f"{args.jobs:,} jobs per side in {args.rounds} rounds", total=2 * args.jobs)
    for index, count in enumerate(split(args.jobs, args.rounds)):
        for label in ("on", "off") if index % 2 == 0 else ("off", "on"):
            before = cpu_snapshot(stack.procs)
            elapsed, failures = stack.sides[label].throughput(count, args.threads)
            results[label].add_throughput(
                count, elapsed, failures, cpu_delta(before, cpu_snapshot(stack.procs))
            )
            stack.procs.check_alive()
            progress.advance(task, count)
    return results


def measure(args: argparse.Namespace, work_dir: Path, progress: Progress) -> Figures:
    """Both deployments' rounds and the scrapes, then the dashboard part."""
    shape = observed_stack.Shape(args.latency_ms, args.concurrency, args.trace_ratio)
    stack = observed_stack.start(work_dir, args.redis_url, args.admin_url, shape)
    try:
        warm = progress.add_task("warm-up, both sides", total=2)
        warm_up_failures = []
        for side in stack.sides.values():
            warm_up_failures += side.warm_up(args.warmup)
            # and one unmeasured round with jobs in flight: the first such round runs slow
            warm_up_failures += side.throughput(min(args.jobs, WARM_ROUND), args.threads)[1]
            progress.advance(warm)
        on = stack.sides["on"]
        counted_before = on.jobs_ended()
        results = rounds(stack, args, progress)
        counted = on.jobs_ended() - counted_before
        spans = stack.spans_received()
    finally:
        stack.procs.stop_all()
        for side in stack.sides.values():
            forget_keys(args.redis_url, side.key_prefix)
            forget_keys(args.redis_url, side.tier)  # its queues (with their priority steps)
        for url in stack.databases:
            drop_database(args.admin_url, url)
    dashboard = None
    if not args.skip_dashboard:
        dashboard = dashboard_load.measure(
            args.admin_url, args.redis_url, args.dashboard_jobs, args.dashboard_runs, progress
        )
    return Figures(results["on"], results["off"], counted, spans, warm_up_failures, dashboard)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 if any job failed (the figures are then not valid)."""
    args = parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    work_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-observability-"))
    try:
        with sigterm_as_exit(), progress_bars() as progress:
            figures = measure(args, work_dir, progress)
    except BaseException:
        console.print(f"[red]failed; process logs kept in {work_dir}")
        raise
    ok = observability_report.report(figures, args, console)
    if args.keep or not ok:
        console.print(f"process logs kept in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(observability_report.last_line(figures), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
