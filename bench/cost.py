"""What a real workload costs: a demo's way against Switchyard's, priced with one price table.

One workload (``bench/cost_workload.py``: a fixed seed; about 35 % exact repeats, 10 %
paraphrases, easy requests, requests that can wait a day, ordinary questions) is replayed
twice against the provider emulator, whose answers' token counts depend on the request:

- **naive**: every request at once, synchronously, to the large model, no cache
  (``bench/cost_sides.py``);
- **Switchyard**: the same requests through the real API, Celery workers and beat
  (``bench/cost_stack.py``, config ``bench/cost.toml``): exact and semantic caches on, routing
  rules sending easy and short requests to the small model, and the requests that can wait
  through the provider Batch API lane.

Then the two safety figures (``bench/cost_checks.py``): wrong answers of the semantic cache on
the test half's pairs of different meaning, and the calls beyond a budget in the issue's
concurrent-budget scenario (50 jobs, a budget worth 10, the stack's 4 worker processes).

Ends with ``cost_reduction=<1 - switchyard/naive> cost_per_1k_naive=<usd>
cost_per_1k_switchyard=<usd> wrong_cache_answers=<fraction> budget_overspend_calls=<n>``.
Run: ``.venv/bin/python bench/cost.py`` (``make bench-cost``); ``--quick`` for 100 requests.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import bench_paths  # noqa: F401  (puts the project on sys.path)
import cost_checks
import cost_report
import cost_sides
import cost_stack
import cost_workload
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
QUICK_REQUESTS = 100
QUICK_PAIRS = 30  # of each label in quick mode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/cost.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests in the workload")
    parser.add_argument("--seed", type=int, default=20261208, help="the workload generator's seed")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_REQUESTS} requests, {QUICK_PAIRS} pairs of each label"
    )
    parser.add_argument("--workers", type=int, default=4, help="single-process Celery workers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="its bench keys are deleted")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; empty: SQLite in a temp dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = QUICK_REQUESTS
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    return args


def progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def run(args: argparse.Namespace, var_dir: Path) -> cost_report.Figures:
    """Both replays and both checks, on one stack."""
    requests = cost_workload.generate(args.requests, seed=args.seed)
    wave = cost_workload.default_lag(args.requests)  # a repeat's source is at least a wave back
    embedder, _ = cost_checks.loading_embedder()
    stack = cost_stack.start(var_dir, args.redis_url, args.database_url, args.workers)
    try:
        with progress_bars() as progress:
            large = stack.settings.models["large-model"]
            naive = cost_sides.naive_costs(requests, stack.emulator_url, large, progress)
            replayed = cost_sides.replay(stack, requests, wave, progress)
            pairs = cost_checks.test_half_pairs(QUICK_PAIRS if args.quick else None)
            threshold = stack.settings.cache.semantic_threshold
            lookups = cost_checks.cache_lookups(pairs, args.redis_url, threshold, progress, embedder)
            budget_task = progress.add_task("budget: 50 concurrent jobs, a budget worth 10", total=1)
            budget = cost_checks.budget_overspend(stack)
            progress.advance(budget_task)
        jobs = cost_sides.JobCosts.read(stack, stack.tenant_id())
    finally:
        stack.stop()
        cost_stack.forget_keys(args.redis_url, stack.settings.key_prefix)
    return cost_report.Figures(requests, naive, replayed, jobs, lookups, budget, threshold)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    var_dir = Path(tempfile.mkdtemp(prefix="switchyard-bench-cost-"))
    try:
        figures = run(args, var_dir)
    except BaseException:
        console.print(f"[red]failed; process logs kept in {var_dir}")
        raise
    shutil.rmtree(var_dir, ignore_errors=True)
    cost_report.report(figures, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
