"""The progress lines of `switchyard batch submit --wait`, rendered from fixed states."""

from __future__ import annotations

import io

from rich.console import Console

from cli.batch_progress import ProgressState, batch_elapsed, clock, render_progress


def rendered(state: ProgressState, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(render_progress(state, bar_width=20))
    return console.export_text().splitlines()


BATCH = {
    "id": "batch_abc",
    "status": "in_progress",
    "request_counts": {"total": 200, "completed": 48, "failed": 2},
    "counts": {"queued": 140, "running": 10, "succeeded": 48, "failed": 2, "canceled": 0, "invalid": 0},
    "eta_s": None,
    "cost_usd": 0.0123,
}


def test_the_lines_show_bar_counts_throughput_eta_cost_and_states() -> None:
    state = ProgressState.from_batch(BATCH, elapsed_s=20.0, finished_at_start=10)
    bar_line, detail, states = rendered(state)
    # 50 of 200 finished: a quarter of the 20-cell bar is drawn; without colour the rest is blank.
    assert bar_line == "━" * 5 + " " * 15 + " 50/200  25%  ETA 0:01:15"
    # 40 finished in the 20 s watched: 2 per second, so the other 150 take 75 s.
    assert detail == "in_progress  ✓ 48 ✗ 2  2.0 req/s  elapsed 0:00:20  $0.0123"
    assert states == "queued 140 · running 10 · succeeded 48 · failed 2"


def test_the_three_lines_fit_an_80_column_terminal_with_the_default_bar() -> None:
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    state = ProgressState.from_batch({**BATCH, "cost_usd": 1234.5678}, 3599.0, finished_at_start=0)
    console.print(render_progress(state))
    assert len(console.export_text().splitlines()) == 3


def test_the_apis_eta_wins_over_the_watchers_estimate() -> None:
    state = ProgressState.from_batch({**BATCH, "eta_s": 3725.4}, elapsed_s=20.0, finished_at_start=10)
    assert rendered(state)[0].endswith("ETA 1:02:05")


def test_before_anything_finished_throughput_and_eta_are_unknown() -> None:
    counts = {"total": 200, "completed": 0, "failed": 0}
    fresh = {**BATCH, "request_counts": counts, "counts": {"queued": 200}, "cost_usd": None}
    bar_line, detail, states = rendered(ProgressState.from_batch(fresh, elapsed_s=0.0, finished_at_start=0))
    assert bar_line == " " * 20 + " 0/200   0%  ETA -:--:--"
    assert detail == "in_progress  ✓ 0 ✗ 0  - req/s  elapsed 0:00:00"
    assert states == "queued 200"


def test_a_finished_batch_shows_a_full_bar_and_what_became_of_every_line() -> None:
    done = {
        **BATCH,
        "status": "completed",
        "request_counts": {"total": 4, "completed": 3, "failed": 1},
        "counts": {"succeeded": 3, "invalid": 1},
        "eta_s": 0,
    }
    bar_line, detail, states = rendered(ProgressState.from_batch(done, elapsed_s=2.0, finished_at_start=0))
    assert bar_line == "━" * 20 + " 4/4 100%  ETA 0:00:00"
    assert detail.startswith("completed  ✓ 3 ✗ 1  2.0 req/s")
    assert states == "succeeded 3 · invalid 1"


def test_a_batch_runs_from_its_start_to_its_end_or_to_now() -> None:
    running = {"created_at": 100, "in_progress_at": 110}
    assert batch_elapsed(running, now=150.0) == 40.0
    assert batch_elapsed({**running, "completed_at": 130}, now=999.0) == 20.0
    assert batch_elapsed({"created_at": 100, "cancelled_at": 105}, now=999.0) == 5.0


def test_clock_formats_seconds() -> None:
    shown = [clock(None), clock(0), clock(59.6), clock(3600 + 61)]
    assert shown == ["-:--:--", "0:00:00", "0:01:00", "1:01:01"]
