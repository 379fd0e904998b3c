"""The figures, tables and last line of ``bench/ratelimit.py``.

Goodput is measured over the steady part of a run. A fresh sliding window admits a whole
window's worth of calls at once, so the first window says nothing about the steady rate: the
figure counts the successful calls that completed after the first window (which starts with
the side's first call), and divides by what the limit allows from the end of that window to
the last completion. The whole-run figure (every successful call over the time from the first
call to the last completion) is printed next to it for reference.

The steady figure can exceed 1. Workers that can call faster than the limit fill each window
in a burst as soon as the calls of the window before slide out, so a run whose last burst
ends early in its window has its end cut short: the last partial window's calls are counted
over less than a window's time. The whole-windows figure avoids that: the successful calls
that completed in the whole windows after the first (from one window after the first call to
the last whole window's end), over the limit for those windows; a limiter that always keeps a
window full scores 1 on it, whatever the phase of the last burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ratelimit_sides import Limits, Outcome
from rich.console import Console
from rich.table import Table

TARGET_GOODPUT = 0.95
TARGET_RATE_429 = 0.01
TARGET_FAILED = 0


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan


@dataclass
class SideFigures:
    """One side's run, from its outcomes and its emulator's counters."""

    name: str
    jobs: int
    succeeded: int
    failed: int
    calls: int  # requests the provider saw
    rejected: int  # of which it answered 429
    other_errors: int  # of which it answered anything but 200 and 429
    first_call: float  # epoch s: start of the first successful call, the first window's start
    last_done: float  # epoch s: the last successful call's end
    steady_calls: int  # successful calls that ended after the first window
    goodput: float
    naive_goodput: float
    windows_goodput: float  # over the whole windows after the first; NaN under two windows
    submit_s: float  # from the first submission until all were in
    wall_s: float  # the measured phase, submissions to the last job seen final
    max_attempts: int  # 0 when the side does not report attempts
    retried: int  # jobs that needed more than one try (Switchyard only)
    per_window: list[int] = field(default_factory=list)  # successful calls ended in each window
    cpu_s: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def rate_429(self) -> float:
        """The share of provider calls answered 429."""
        return ratio(self.rejected, self.calls)

    @property
    def duration_s(self) -> float:
        """First successful call to last completion."""
        return self.last_done - self.first_call


def side_figures(
    name: str,
    outcomes: list[Outcome],
    stats: dict[str, object],
    limits: Limits,
    submit_s: float,
    wall_s: float,
    cpu_s: dict[str, float],
) -> SideFigures:
    """Goodput (steady and whole-run), 429 rate and failures of one side."""
    ok = [outcome for outcome in outcomes if outcome.ok]
    by_status = stats.get("by_status") or {}
    assert isinstance(by_status, dict)
    calls = int(str(stats.get("requests", 0)))
    rejected = int(by_status.get("429", 0))
    other = calls - rejected - int(by_status.get("200", 0))
    first = min((outcome.started for outcome in ok), default=math.nan)
    last = max((outcome.finished for outcome in ok), default=math.nan)
    steady_from = first + limits.window_s
    steady = sum(1 for outcome in ok if outcome.finished > steady_from)
    whole = math.floor((last - first) / limits.window_s) if ok else 0
    windows_end = first + whole * limits.window_s
    in_windows = sum(1 for outcome in ok if steady_from < outcome.finished <= windows_end)
    per_window = [0] * (whole + 1)
    for outcome in ok:
        per_window[min(whole, max(0, math.ceil((outcome.finished - first) / limits.window_s) - 1))] += 1
    return SideFigures(
        name=name,
        jobs=len(outcomes),
        succeeded=len(ok),
        failed=len(outcomes) - len(ok),
        calls=calls,
        rejected=rejected,
        other_errors=other,
        first_call=first,
        last_done=last,
        steady_calls=steady,
        goodput=ratio(steady, limits.per_s * (last - steady_from)),
        naive_goodput=ratio(len(ok), limits.per_s * (last - first)),
        windows_goodput=ratio(in_windows, limits.rpm * (whole - 1)),
        submit_s=submit_s,
        wall_s=wall_s,
        max_attempts=max((outcome.attempts for outcome in outcomes), default=0),
        retried=sum(1 for outcome in outcomes if outcome.attempts > 1),
        per_window=per_window,
        cpu_s=cpu_s,
        failures=[outcome.failure for outcome in outcomes if not outcome.ok],
    )


def print_sides(console: Console, sides: list[SideFigures], limits: Limits, cores: int) -> None:
    """One column per side: jobs, calls, 429s, duration, goodput, and CPU by process."""
    table = Table(
        title=f"Rate limits: {limits.rpm} requests and {limits.tpm} tokens per {limits.window_s:g} s "
        f"window ({limits.per_s:g} calls/s), {limits.latency_ms:g} ms latency"
    )
    table.add_column("")
    for side in sides:
        table.add_column(side.name, justify="right")

    def row(label: str, cells: list[str]) -> None:
        table.add_row(label, *cells)

    row("jobs", [str(side.jobs) for side in sides])
    row("succeeded", [str(side.succeeded) for side in sides])
    row("failed", [str(side.failed) for side in sides])
    row("provider calls", [str(side.calls) for side in sides])
    row("429s", [str(side.rejected) for side in sides])
    row("other errors", [str(side.other_errors) for side in sides])
    row("rate_429 (429s / calls)", [f"{side.rate_429:.4f}" for side in sides])
    row("jobs tried more than once", [str(side.retried) if side.max_attempts else "n/a" for side in sides])
    row("max tries of a job", [str(side.max_attempts) if side.max_attempts else "n/a" for side in sides])
    row("submitting took (s)", [f"{side.submit_s:.1f}" for side in sides])
    row("first call -> last done (s)", [f"{side.duration_s:.1f}" for side in sides])
    row("calls done after the first window", [str(side.steady_calls) for side in sides])
    row("goodput (steady)", [f"{side.goodput:.3f}" for side in sides])
    row("goodput (whole run)", [f"{side.naive_goodput:.3f}" for side in sides])
    row("goodput (whole windows after the first)", [f"{side.windows_goodput:.3f}" for side in sides])
    row("calls/s (whole run)", [f"{ratio(side.succeeded, side.duration_s):.1f}" for side in sides])
    console.print(table)

    windows = Table(title="Successful calls ended in each window, counted from each side's first call")
    windows.add_column("window (s)")
    for side in sides:
        windows.add_column(side.name, justify="right")
    for index in range(max(len(side.per_window) for side in sides)):
        start, end = index * limits.window_s, (index + 1) * limits.window_s
        cells = [str(side.per_window[index]) if index < len(side.per_window) else "" for side in sides]
        windows.add_row(f"{start:g} - {end:g}", *cells)
    console.print(windows)

    cpu = Table(title=f"CPU seconds while measuring (the machine has {cores} cores)")
    cpu.add_column("process")
    for side in sides:
        cpu.add_column(side.name, justify="right")
    names = list(dict.fromkeys(name for side in sides for name in side.cpu_s))
    for name in [*names, "total", f"share of {cores} cores"]:
        cells = []
        for side in sides:
            total = sum(side.cpu_s.values())
            if name == "total":
                cells.append(f"{total:.1f}")
            elif name.startswith("share"):
                cells.append(f"{ratio(total, cores * side.wall_s):.0%}" if side.cpu_s else "")
            else:
                seconds = side.cpu_s.get(name)
                cells.append("" if seconds is None else f"{seconds:.1f}")
        cpu.add_row(name, *cells)
    console.print(cpu)


def print_targets(console: Console, sy: SideFigures) -> None:
    """Switchyard's figures against the issue's targets; a miss does not change the exit code."""
    checks = [
        (f"goodput {sy.goodput:.3f} >= {TARGET_GOODPUT}", sy.goodput >= TARGET_GOODPUT),
        (f"rate_429 {sy.rate_429:.4f} <= {TARGET_RATE_429}", sy.rate_429 <= TARGET_RATE_429),
        (f"failed {sy.failed} = {TARGET_FAILED}", sy.failed == TARGET_FAILED),
    ]
    for text, met in checks:
        console.print(f"  {'[green]met[/]' if met else '[red bold]missed[/]'}: {text}")
    for failure in sy.failures[:20]:
        console.print(f"  {failure}", markup=False)


def last_line(
    sy: SideFigures, baseline: SideFigures | None, limits: Limits, workers: int, concurrency: int
) -> str:
    """``goodput=... rate_429=... failed=... baseline_goodput=... baseline_rate_429=...`` and extras."""
    nan = math.nan
    fields: list[tuple[str, object]] = [
        ("goodput", f"{sy.goodput:.3f}"),
        ("rate_429", f"{sy.rate_429:.4f}"),
        ("failed", sy.failed),
        ("baseline_goodput", f"{baseline.goodput if baseline else nan:.3f}"),
        ("baseline_rate_429", f"{baseline.rate_429 if baseline else nan:.4f}"),
        ("baseline_failed", baseline.failed if baseline else "nan"),
        ("naive_goodput", f"{sy.naive_goodput:.3f}"),
        ("baseline_naive_goodput", f"{baseline.naive_goodput if baseline else nan:.3f}"),
        ("windows_goodput", f"{sy.windows_goodput:.3f}"),
        ("baseline_windows_goodput", f"{baseline.windows_goodput if baseline else nan:.3f}"),
        ("jobs", sy.jobs),
        ("rpm", limits.rpm),
        ("tpm", limits.tpm),
        ("window_s", f"{limits.window_s:g}"),
        ("latency_ms", f"{limits.latency_ms:g}"),
        ("workers", workers),
        ("concurrency", concurrency),
    ]
    return " ".join(f"{name}={value}" for name, value in fields)
