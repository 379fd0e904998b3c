"""The live progress line of ``switchyard batch submit --wait``: bar, counts, throughput, ETA.

Rendering is a pure function of a ``ProgressState`` so it can be checked without timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

# Job states shown after the bar, in this order, when the batch object reports them.
SHOWN_STATES = ("queued", "running", "succeeded", "failed", "canceled", "invalid")


@dataclass(frozen=True)
class ProgressState:
    """What the watcher knows about a batch at one moment."""

    batch_id: str
    status: str
    total: int
    completed: int
    failed: int
    elapsed_s: float
    finished_since_start: int = 0
    eta_s: float | None = None
    cost_usd: float | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_batch(cls, batch: dict[str, Any], elapsed_s: float, finished_at_start: int) -> ProgressState:
        """The state from a batch object of the API, ``elapsed_s`` after watching began."""
        request_counts = batch.get("request_counts") or {}
        completed = int(request_counts.get("completed", 0))
        failed = int(request_counts.get("failed", 0))
        return cls(
            batch_id=str(batch["id"]),
            status=str(batch.get("status", "unknown")),
            total=int(request_counts.get("total", 0)),
            completed=completed,
            failed=failed,
            elapsed_s=elapsed_s,
            finished_since_start=completed + failed - finished_at_start,
            eta_s=batch.get("eta_s"),
            cost_usd=batch.get("cost_usd"),
            counts={str(k): int(v) for k, v in (batch.get("counts") or {}).items()},
        )

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def throughput(self) -> float | None:
        """Requests finished per second while watching; None before any finished."""
        if self.elapsed_s <= 0 or self.finished_since_start <= 0:
            return None
        return self.finished_since_start / self.elapsed_s

    @property
    def eta(self) -> float | None:
        """Seconds left: the API's estimate, else the remaining requests at our throughput."""
        if self.eta_s is not None:
            return float(self.eta_s)
        if self.throughput is None:
            return None
        return (self.total - self.finished) / self.throughput


def batch_elapsed(batch: dict[str, Any], now: float) -> float:
    """Seconds the batch has run: from its start to its end, or to ``now`` while it runs."""
    start = batch.get("in_progress_at") or batch.get("created_at") or now
    ends = [batch.get(name) for name in ("completed_at", "cancelled_at", "failed_at", "expired_at")]
    end = next((moment for moment in ends if moment), now)
    return max(0.0, float(end) - float(start))


def clock(seconds: float | None) -> str:
    """``h:mm:ss``, or ``-:--:--`` when unknown."""
    if seconds is None:
        return "-:--:--"
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def counts_text(state: ProgressState) -> Text:
    """``queued 20 · running 3 · ...``: the job states the batch reports, non-zero ones only."""
    parts = [f"{name} {state.counts[name]}" for name in SHOWN_STATES if state.counts.get(name)]
    return Text(" · ".join(parts) or f"completed {state.completed} · failed {state.failed}", style="dim")


def render_progress(state: ProgressState, bar_width: int = 40) -> RenderableType:
    """Three lines that fit 80 columns: the bar with done/total, percentage and ETA; status,
    successes, failures, throughput, elapsed time and cost; then the job states."""
    share = state.finished / state.total if state.total else 0.0
    head = Table.grid(padding=(0, 1))
    head.add_row(
        ProgressBar(total=max(state.total, 1), completed=state.finished, width=bar_width),
        Text(f"{state.finished}/{state.total} {share:4.0%}  ETA {clock(state.eta)}", no_wrap=True),
    )
    throughput = f"{state.throughput:.1f} req/s" if state.throughput is not None else "- req/s"
    cost = f"  ${state.cost_usd:.4f}" if state.cost_usd is not None else ""
    detail = Text.assemble(
        (state.status, "cyan"),
        "  ",
        (f"✓ {state.completed}", "green"),
        " ",
        (f"✗ {state.failed}", "red" if state.failed else "dim"),
        f"  {throughput}  elapsed {clock(state.elapsed_s)}{cost}",
    )
    return Group(head, detail, counts_text(state))
