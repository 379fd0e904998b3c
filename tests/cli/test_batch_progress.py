"""The progress line of `switchyard batch submit --wait`, rendered from fixed states."""

from __future__ import annotations

from rich.console import Console

from cli.batch_progress import ProgressState, clock, render_progress


def rendered(state: ProgressState, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render_progress(state, bar_width=20))
    return console.export_text()


BATCH = {
    "id": "batch_abc",
    "status": "in_progress",
    "request_counts": {"total": 200, "completed": 48, "failed": 2},
    "counts": {"queued": 140, "running": 10, "succeeded": 48, "failed": 2, "canceled": 0, "invalid": 0},
    "eta_s": None,
    "cost_usd": 0.0123,
}


def test_the_line_shows_bar_counts_throughput_eta_cost_and_states() -> None:
    state = ProgressState.from_batch(BATCH, elapsed_s=20.0, finished_at_start=10)
    text = rendered(state)
    first, second = text.splitlines()[:2]
    assert first.startswith("batch_abc in_progress ")
    # 50 of 200 finished: a quarter of the 20-cell bar is drawn.
    bar = first.split("in_progress ")[1].split(" 50/200")[0]
    assert bar == "━" * 5 + " " * 15  # without colour the undone part is blank
    assert " 50/200  25% ✓ 48 ✗ 2 2.0 req/s ETA 0:01:15 elapsed 0:00:20 $0.0123" in first
    assert second.strip() == "queued 140 · running 10 · succeeded 48 · failed 2"


def test_the_apis_eta_wins_over_the_watchers_estimate() -> None:
    state = ProgressState.from_batch({**BATCH, "eta_s": 3725.4}, elapsed_s=20.0, finished_at_start=10)
    assert "ETA 1:02:05" in rendered(state)


def test_before_anything_finished_throughput_and_eta_are_unknown() -> None:
    counts = {"total": 200, "completed": 0, "failed": 0}
    fresh = {**BATCH, "request_counts": counts, "counts": {"queued": 200}}
    text = rendered(ProgressState.from_batch(fresh, elapsed_s=0.0, finished_at_start=0))
    assert "0/200   0%" in text and "- req/s" in text and "ETA -:--:--" in text
    assert "queued 200" in text


def test_a_finished_batch_shows_a_full_bar() -> None:
    done = {
        **BATCH,
        "status": "completed",
        "request_counts": {"total": 4, "completed": 3, "failed": 1},
        "counts": {"succeeded": 3, "invalid": 1},
        "eta_s": 0,
    }
    text = rendered(ProgressState.from_batch(done, elapsed_s=2.0, finished_at_start=0))
    assert "completed " + "━" * 20 + " 4/4 100%" in text
    assert "2.0 req/s" in text and "ETA 0:00:00" in text
    assert "succeeded 3 · invalid 1" in text


def test_clock_formats_seconds() -> None:
    shown = [clock(None), clock(0), clock(59.6), clock(3600 + 61)]
    assert shown == ["-:--:--", "0:00:00", "0:01:00", "1:01:01"]
