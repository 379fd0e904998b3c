"""Switchyard's per-job overhead against bare Celery, measured in one run on the same Redis.

Baseline: a bare Celery app (Redis broker and result backend, one empty task, a prefork
worker with two processes, acks late, prefetch one). Switchyard: the real processes (provider
emulator with no latency and no limits, the API under uvicorn, one worker with two prefork
processes serving a tier whose only model is on the emulator) and a tenant key.

Both sides are started and warmed up first, then measured in interleaved rounds, so both see
the same machine: ``--rounds`` rounds of sequential round trips (p50/p99 latency) and
``--throughput-rounds`` rounds with many jobs in flight (jobs/s), bare and Switchyard in each
round, the side that goes first alternating. While one side is measured the other sits idle.
The figures aggregate each side over its rounds; the last line holds them as ``name=value``.

Run: ``.venv/bin/python bench/overhead.py`` (or ``make bench-overhead``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import bare_side
import bench_paths
import switchyard_side
from bare_side import BareSide
from cpu_usage import cpu_delta, cpu_snapshot
from redis import Redis
from report import report
from results import SequentialRound, SideResult, split
from rich.console import Console
from switchyard_side import SwitchyardSide, create_database, drop_database

from infra.launch import ProcessGroup

console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="bench/overhead.py", description="Switchyard's overhead against bare Celery."
    )
    parser.add_argument(
        "--sequential", type=int, default=300, help="sequential round trips per side, over all rounds"
    )
    parser.add_argument("--warmup", type=int, default=20, help="round trips per side before measuring")
    parser.add_argument(
        "--inflight", type=int, default=2000, help="jobs per side for throughput, over all throughput rounds"
    )
    parser.add_argument("--threads", type=int, default=16, help="client threads for Switchyard throughput")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of sequential round trips")
    parser.add_argument(
        "--throughput-rounds", type=int, default=3, help="interleaved rounds of throughput (jobs in flight)"
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/11", help="a dedicated Redis db, flushed"
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL admin URL, e.g. postgresql://postgres@127.0.0.1:5432/test; a fresh "
        "database is created for the run and dropped after. Empty: SQLite in a temp var dir.",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite file)")
    args = parser.parse_args(argv)
    for option in ("sequential", "inflight", "rounds", "throughput_rounds", "threads"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    return args


def in_turn(index: int, bare: SideResult, sy: SideResult) -> tuple[SideResult, SideResult]:
    """Both sides in the order they run in round ``index``: bare first in even rounds."""
    return (bare, sy) if index % 2 == 0 else (sy, bare)


def measure(
    procs: ProcessGroup, bare: BareSide, sy: SwitchyardSide, args: argparse.Namespace
) -> tuple[SideResult, SideResult]:
    """The interleaved rounds: sequential, then throughput; returns (bare, Switchyard) aggregates."""
    bare_result = SideResult(bare.name, bare_side.PROCESSES)
    sy_result = SideResult(sy.name, switchyard_side.PROCESSES)
    sequential: dict[str, Callable[[int], SequentialRound]] = {
        bare.name: bare.sequential,
        sy.name: sy.sequential,
    }
    for index, count in enumerate(split(args.sequential, args.rounds)):
        for result in in_turn(index, bare_result, sy_result):
            result.add_sequential(sequential[result.name](count))
            procs.check_alive()
        console.print(
            f"  sequential round {index + 1}: {count} round trips each, p50 bare "
            f"{bare_result.round_p50_ms[-1]:.2f} ms, Switchyard {sy_result.round_p50_ms[-1]:.2f} ms"
        )
    throughput: dict[str, Callable[[int], tuple[float, list[str]]]] = {
        bare.name: bare.throughput,
        sy.name: lambda count: sy.throughput(count, args.threads),
    }
    for index, count in enumerate(split(args.inflight, args.throughput_rounds)):
        for result in in_turn(index, bare_result, sy_result):
            cpu_before = cpu_snapshot(procs)
            elapsed, failures = throughput[result.name](count)
            result.add_throughput(count, elapsed, failures, cpu_delta(cpu_before, cpu_snapshot(procs)))
            procs.check_alive()
        console.print(
            f"  throughput round {index + 1}: {count} jobs each, bare {bare_result.round_jobs_s[-1]:.1f} "
            f"jobs/s, Switchyard {sy_result.round_jobs_s[-1]:.1f} jobs/s"
        )
    return bare_result, sy_result


def run(procs: ProcessGroup, work_dir: Path, args: argparse.Namespace) -> tuple[SideResult, SideResult]:
    """Start and warm up both sides, measure them in interleaved rounds, stop them."""
    database = "PostgreSQL" if args.database_url else "SQLite"
    database_url = create_database(args.database_url) if args.database_url else ""
    bare: BareSide | None = None
    try:
        console.print("[bold]bare Celery[/]: starting the worker (prefork, -c 2)")
        bare = BareSide(procs, args.redis_url)
        console.print(f"[bold]Switchyard[/] ({database}): starting emulator, API and worker (prefork, -c 2)")
        sy = SwitchyardSide(procs, work_dir, args.redis_url, database_url)
        warm_up_failures = {bare.name: bare.warm_up(args.warmup), sy.name: sy.warm_up(args.warmup)}
        console.print(
            f"both sides warmed up; {args.rounds} sequential and {args.throughput_rounds} throughput rounds"
        )
        bare_result, sy_result = measure(procs, bare, sy, args)
        for result in (bare_result, sy_result):
            result.failures[:0] = warm_up_failures[result.name]
        return bare_result, sy_result
    finally:
        if bare is not None:
            bare.close()
        procs.stop_all()
        if database_url:
            drop_database(args.database_url, database_url)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` blocks stop every subprocess."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 if any job failed."""
    args = parse_args(argv)
    redis = Redis.from_url(args.redis_url)
    redis.ping()
    redis.flushdb()
    work_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    env = bench_paths.process_env()
    procs = ProcessGroup(work_dir, env)
    ok = False
    try:
        with sigterm_as_exit():
            bare, sy = run(procs, work_dir, args)
        last_line = report(console, bare, sy, args.redis_url)
        failures = bare.failures + sy.failures
        if failures:
            console.print(f"[red bold]{len(failures)} jobs failed[/]; the figures are not valid:")
            for failure in failures[:50]:
                console.print(f"  {failure}", markup=False)
        ok = not failures
    finally:
        procs.stop_all()
        redis.flushdb()
        redis.close()
        if args.keep or not ok:
            console.print(f"logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(last_line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
