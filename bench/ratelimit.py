"""Rate limits: Switchyard's limiter against plain Celery's ``rate_limit``, on one provider limit.

A provider emulator enforces RPM and TPM limits over a sliding window (by default 600
requests and 40,000 tokens per 20 s window, a minute compressed to 20 s, with 200 ms per
call). Two sides, one after the other, each with a fresh emulator:

1. Switchyard: the API, ``--workers`` prefork workers of ``--concurrency`` pool processes each
   and beat, serving a tier whose only model has the same ``rpm`` and ``tpm`` in its config;
   ``--jobs`` live jobs go in through ``POST /v1/jobs`` and are long-polled until final.
2. Baseline, plain Celery (``bench/ratelimit_baseline_app.py``): as many workers of a task that
   calls the emulator through the ``openai`` SDK with ``rate_limit`` set to the provider's
   limit per second, retrying on ``RateLimitError`` with backoff; ``--jobs`` tasks, collected
   with ``AsyncResult.get``.

For each side: goodput (successful calls per second over the steady part of the run, divided by
the limit per second; see ``bench/ratelimit_report.py``), the share of provider calls answered
429, and the failed jobs. The last line is ``goodput=... rate_429=... failed=...
baseline_goodput=... baseline_rate_429=...`` followed by more ``name=value`` pairs. Targets
(Switchyard): goodput >= 0.95, rate_429 <= 0.01, failed = 0; a miss does not change the exit
code, a broken run exits 1.

Run: ``.venv/bin/python bench/ratelimit.py`` (or ``make bench-ratelimit``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import bench_paths
import httpx
from cpu_usage import cpu_delta, cpu_snapshot
from overhead import sigterm_as_exit
from ratelimit_report import SideFigures, last_line, print_sides, print_targets, side_figures
from ratelimit_sides import CeleryBaseline, Emulator, Limits, Outcome, SwitchyardLimited, Tally
from redis import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from switchyard_side import create_database, drop_database

from infra.launch import ProcessGroup

console = Console()
T = TypeVar("T")
PLAIN_PROGRESS_EVERY_S = 10.0  # progress lines when the output is not a terminal


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="bench/ratelimit.py",
        description="Switchyard's rate limiter against plain Celery's rate_limit, on a rate-limited "
        "provider emulator. Limits are per --window-s window, as a provider's RPM and TPM are per minute.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_load_options(parser)
    add_deployment_options(parser)
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options of the load and of the provider's limits."""
    parser.add_argument("--jobs", type=int, default=2000, help="jobs (provider calls) per side")
    parser.add_argument(
        "--workers", type=int, default=4, help="worker processes (celery worker instances) per side"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="prefork pool processes per worker (celery -c)"
    )
    parser.add_argument(
        "--rpm",
        type=int,
        default=600,
        help="requests the provider allows per window, in Switchyard's config and at the emulator",
    )
    parser.add_argument(
        "--tpm",
        type=int,
        default=40000,
        help="tokens (prompt + max_tokens at admission, actual usage after) the provider allows per window",
    )
    parser.add_argument(
        "--window-s",
        type=float,
        default=20.0,
        help="rate-limit window in seconds (a provider's minute, compressed): the emulator's --window-s "
        "and Switchyard's rate_limits.window_s",
    )
    parser.add_argument("--latency-ms", type=float, default=200.0, help="the emulator's latency per call")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of every request")
    parser.add_argument(
        "--threads", type=int, default=8, help="client threads submitting and long-polling Switchyard jobs"
    )


def add_deployment_options(parser: argparse.ArgumentParser) -> None:
    """Where the run keeps its state, and what it measures and keeps."""
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/12",
        help="a dedicated Redis db (broker, results, limiter), flushed at the start and the end",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL admin URL, e.g. postgresql://postgres@127.0.0.1:5432/test; a fresh "
        "database is created for the run and dropped after. Empty: SQLite in the temp dir.",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="measure Switchyard only")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite file)")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse counts below one and windows or latencies out of range."""
    for option in ("jobs", "workers", "concurrency", "rpm", "tpm", "max_tokens", "threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.window_s <= 0:
        parser.error("--window-s must be positive")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")


def deadline_s(jobs: int, limits: Limits) -> float:
    """How long a side may take: four times what the limit needs, plus two minutes."""
    return 120.0 + 4 * jobs / limits.per_s


def watch(
    label: str, total: int, emulator: Emulator, alive: Callable[[], None], work: Callable[[Tally], T]
) -> T:
    """Run ``work`` in a thread, showing jobs final and the provider's answers until it ends."""
    tally = Tally()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = work(tally)
        except BaseException as exc:  # re-raised in the main thread below
            box["error"] = exc

    def provider() -> tuple[int, str]:
        """Successful calls so far (each job makes one), and a line about the provider and client."""
        seen = f"{tally.done} final at the client"
        with contextlib.suppress(httpx.HTTPError):
            by_status = emulator.stats()["by_status"]
            ok = int(by_status.get("200", 0))
            return ok, f"provider {ok} ok, {by_status.get('429', 0)} 429; {seen}"
        return tally.done, f"provider ?; {seen}"

    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    if console.is_terminal:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[calls]}"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(label, total=total, calls="")
            while thread.is_alive():
                thread.join(0.5)
                alive()
                ok, line = provider()
                progress.update(task, completed=min(ok, total), calls=line)
            ok, line = provider()
            progress.update(task, completed=min(ok, total), calls=line)
    else:
        next_line = started + PLAIN_PROGRESS_EVERY_S
        while thread.is_alive():
            thread.join(0.5)
            alive()
            if time.monotonic() >= next_line:
                elapsed = time.monotonic() - started
                console.print(f"  {label} after {elapsed:.0f} s: {provider()[1]}")
                next_line += PLAIN_PROGRESS_EVERY_S
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def cpu_by_process(delta: dict[str, float]) -> dict[str, float]:
    """CPU seconds by process, the workers of a side summed into one entry."""
    merged: dict[str, float] = {}
    for name, seconds in delta.items():
        label = "workers (all processes)" if name.startswith(("rl-sy-", "rl-base-")) else name
        label = label.removeprefix("sy-").removeprefix("baseline-")
        merged[label] = merged.get(label, 0.0) + seconds
    return merged


def measure(
    name: str,
    procs: ProcessGroup,
    emulator: Emulator,
    work: Callable[[Tally], list[Outcome]],
    submit_s: Callable[[], float],
    args: argparse.Namespace,
    limits: Limits,
) -> SideFigures:
    """Run one side's jobs under the progress display; its figures."""
    cpu_before = cpu_snapshot(procs)
    started = time.monotonic()
    outcomes = watch(name, args.jobs, emulator, procs.check_alive, work)
    wall = time.monotonic() - started
    cpu = cpu_by_process(cpu_delta(cpu_before, cpu_snapshot(procs)))
    figures = side_figures(name, outcomes, emulator.stats(), limits, submit_s(), wall, cpu)
    if not figures.succeeded:
        raise RuntimeError(f"{name}: no job succeeded, first failures: {figures.failures[:3]}")
    console.print(
        f"  {name}: {figures.succeeded}/{figures.jobs} succeeded, {figures.rejected} of {figures.calls} "
        f"provider calls answered 429, goodput {figures.goodput:.3f} (whole run {figures.naive_goodput:.3f})"
    )
    return figures


def run_switchyard(
    procs: ProcessGroup, work_dir: Path, args: argparse.Namespace, limits: Limits
) -> SideFigures:
    """Start Switchyard, warm it up, run the jobs, stop its processes."""
    database = "PostgreSQL" if args.database_url else "SQLite"
    console.print(
        f"[bold]Switchyard[/] ({database}): emulator, API, {args.workers} workers (prefork, "
        f"-c {args.concurrency}) and beat"
    )
    database_url = create_database(args.database_url) if args.database_url else ""
    try:
        var_dir = work_dir / "switchyard"
        var_dir.mkdir()
        sy = SwitchyardLimited(
            procs,
            var_dir,
            args.redis_url,
            database_url,
            limits,
            args.workers,
            args.concurrency,
            args.max_tokens,
        )
        sy.warm_up(2 * args.workers * args.concurrency)
        console.print(f"  warmed up; {args.jobs} live jobs from {args.threads} client threads")
        return measure(
            sy.name,
            procs,
            sy.emulator,
            lambda tally: sy.run(args.jobs, args.threads, tally, deadline_s(args.jobs, limits)),
            lambda: sy.submit_s,
            args,
            limits,
        )
    finally:
        procs.stop_all()
        if database_url:
            drop_database(args.database_url, database_url)


def run_baseline(procs: ProcessGroup, args: argparse.Namespace, limits: Limits) -> SideFigures:
    """Start the plain Celery workers, warm them up, run the tasks, stop them."""
    baseline: CeleryBaseline | None = None
    try:
        baseline = CeleryBaseline(
            procs, args.redis_url, limits, args.workers, args.concurrency, args.max_tokens
        )
        console.print(
            f"[bold]plain Celery[/]: emulator and {args.workers} workers (prefork, -c {args.concurrency}), "
            f'task rate_limit="{baseline.rate}" per worker, autoretry on RateLimitError, max_retries=3'
        )
        baseline.warm_up(2 * args.workers * args.concurrency)
        console.print(f"  warmed up; {args.jobs} tasks")
        ready = baseline
        return measure(
            ready.name,
            procs,
            ready.emulator,
            lambda tally: ready.run(args.jobs, tally, deadline_s(args.jobs, limits)),
            lambda: ready.submit_s,
            args,
            limits,
        )
    finally:
        if baseline is not None:
            baseline.close()
        procs.stop_all()


def main(argv: list[str] | None = None) -> int:
    """Run both sides; 0 when the run completed (targets met or not), 1 when the harness broke."""
    args = parse_args(argv)
    limits = Limits(args.rpm, args.tpm, args.window_s, args.latency_ms)
    redis = Redis.from_url(args.redis_url)
    redis.ping()
    redis.flushdb()
    work_dir = Path(tempfile.mkdtemp(prefix="switchyard-ratelimit-"))
    env = bench_paths.process_env()
    procs = ProcessGroup(work_dir, env)
    line = ""
    try:
        with sigterm_as_exit():
            sy = run_switchyard(procs, work_dir, args, limits)
            baseline = None if args.skip_baseline else run_baseline(procs, args, limits)
        sides = [sy] if baseline is None else [sy, baseline]
        print_sides(console, sides, limits, os.cpu_count() or 1)
        console.print("[bold]Targets (Switchyard)[/]")
        print_targets(console, sy)
        line = last_line(sy, baseline, limits, args.workers, args.concurrency)
    except Exception:  # the harness broke: show why, clean up, exit 1
        console.print_exception()
        console.print("[red bold]the benchmark did not complete[/]")
    finally:
        procs.stop_all()
        redis.flushdb()
        redis.close()
        if args.keep or not line:
            console.print(f"logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    if not line:
        return 1
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
