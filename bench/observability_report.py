"""The tables and the last line of ``bench/observability.py``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from dashboard_load import DashboardFigures
from results import SideResult, median
from rich.console import Console
from rich.table import Table

RATIO_TARGET = 0.95
DASHBOARD_TARGET_MS = 1000.0


@dataclass
class Figures:
    """Everything measured: both sides' rounds, the counted jobs, the spans, the dashboard."""

    on: SideResult
    off: SideResult
    counted: int
    spans: dict[str, int]
    warm_up_failures: list[str]
    dashboard: DashboardFigures | None

    @property
    def ratio(self) -> float:
        return self.on.jobs_s / self.off.jobs_s if self.off.jobs_s else float("nan")

    @property
    def failures(self) -> list[str]:
        return self.warm_up_failures + self.on.failures + self.off.failures


def last_line(figures: Figures) -> str:
    """The issue's closing ``name=value`` line (the dashboard figure: the operator's view)."""
    dashboard = figures.dashboard
    load_ms = f"{dashboard.operator.median_ms:.1f}" if dashboard else "unmeasured"
    return (
        f"metrics_throughput_ratio={figures.ratio:.3f} metrics_jobs_counted={figures.counted} "
        f"jobs={figures.on.jobs} dashboard_load_ms={load_ms}"
    )


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def print_rounds(figures: Figures, console: Console) -> None:
    table = Table(title="Alternating rounds: jobs/s with metrics and tracing on and with both off")
    for column in ("round", "on jobs/s", "off jobs/s", "on / off"):
        table.add_column(column, justify="right")
    ratios = []
    for index, (on, off) in enumerate(zip(figures.on.round_jobs_s, figures.off.round_jobs_s, strict=True)):
        ratios.append(on / off if off else float("nan"))
        table.add_row(str(index + 1), f"{on:.1f}", f"{off:.1f}", f"{ratios[-1]:.3f}")
    table.add_row("all", f"{figures.on.jobs_s:.1f}", f"{figures.off.jobs_s:.1f}", f"{figures.ratio:.3f}")
    console.print(table)
    console.print(
        f"per-round ratio: min {min(ratios):.3f} median {median(ratios):.3f} max {max(ratios):.3f}; "
        f"metrics_throughput_ratio {figures.ratio:.3f} "
        f"(target >= {RATIO_TARGET}: {verdict(figures.ratio >= RATIO_TARGET)})"
    )


def print_cpu(figures: Figures, console: Console) -> None:
    """CPU milliseconds per job of each of the benchmark's processes during each side's rounds:
    where the time goes. Redis and PostgreSQL are left out: other users of the machine share them."""
    table = Table(title="CPU ms per job during each side's rounds (where the time goes)")
    for column in ("process", "on", "off", "on - off"):
        table.add_column(column, justify="right")
    totals = {"on": 0.0, "off": 0.0}
    for role in ("api", "worker", "benchmark client", "emulator", "otlp sink"):
        row = []
        for side in (figures.on, figures.off):
            name = f"{role} {side.name}" if role in ("api", "worker") else role
            per_job = 1000 * side.cpu_s.get(name, 0.0) / side.jobs if side.jobs else float("nan")
            totals[side.name] += per_job
            row.append(per_job)
        table.add_row(role, f"{row[0]:.2f}", f"{row[1]:.2f}", f"{row[0] - row[1]:+.2f}")
    on, off = totals["on"], totals["off"]
    table.add_row("all", f"{on:.2f}", f"{off:.2f}", f"{on - off:+.2f}")
    console.print(table)
    bound = off / on if on else float("nan")
    console.print(f"were the machine CPU-bound by these processes, on / off would be about {bound:.3f}")


def print_dashboard(dashboard: DashboardFigures, console: Console) -> None:
    console.print(
        f"dashboard database: {dashboard.jobs:,} jobs, {dashboard.usage_rows:,} usage rows, "
        f"{dashboard.rollup_rows:,} rollup rows, loaded in {dashboard.load_s:.0f} s"
    )
    table = Table(title="Dashboard load (page, assets, data calls), warm")
    for column in ("viewer", "loads", "median ms", "min ms", "max ms", "what a load fetches"):
        table.add_column(column, justify="right" if column != "what a load fetches" else "left")
    for loads in (dashboard.operator, dashboard.tenant):
        table.add_row(
            loads.viewer, str(len(loads.load_ms)), f"{loads.median_ms:.1f}", f"{min(loads.load_ms):.1f}",
            f"{max(loads.load_ms):.1f}", ", ".join(loads.urls),
        )  # fmt: skip
    console.print(table)
    if dashboard.browser_ms is not None:
        console.print(
            f"headless Chromium, the operator's page until drawn: median {dashboard.browser_ms:.1f} ms"
        )
    ok = dashboard.operator.median_ms <= DASHBOARD_TARGET_MS
    console.print(f"dashboard_load_ms (operator) target <= {DASHBOARD_TARGET_MS:.0f}: {verdict(ok)}")


def report(figures: Figures, args: argparse.Namespace, console: Console) -> bool:
    """Print every table; False if a job failed (the figures are then not valid)."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    console.print(
        f"{args.jobs:,} jobs per side, {args.rounds} rounds, {args.threads} client threads, emulator "
        f"{args.latency_ms:g} ms, worker nodes prefork -c {args.concurrency}, PostgreSQL; "
        f"load average now {load} ({os.cpu_count()} cores)"
    )
    print_rounds(figures, console)
    print_cpu(figures, console)
    exact = figures.counted == figures.on.jobs
    spans, exports = figures.spans.get("spans", 0), figures.spans.get("exports", 0)
    console.print(
        f"switchyard_jobs_ended_total grew by {figures.counted:,} for {figures.on.jobs:,} jobs: "
        f"{verdict(exact)}; spans received by the OTLP sink: {spans:,} in {exports:,} exports"
    )
    if figures.dashboard is not None:
        print_dashboard(figures.dashboard, console)
    if figures.failures:
        console.print(f"[red bold]{len(figures.failures)} jobs failed[/]; the figures are not valid:")
        for failure in figures.failures[:30]:
            console.print(f"  {failure}", markup=False)
    return not figures.failures
