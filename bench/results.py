"""Figures of ``bench/overhead.py``: percentiles, one side's aggregate and its per-round figures."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in 0..100."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive counts (fewer parts if ``total`` is small)."""
    parts = max(1, min(parts, total)) if total > 0 else 1
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


@dataclass
class SequentialRound:
    """One side's sequential round trips in one round."""

    latencies_ms: list[float]
    failures: list[str] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class SideResult:
    """One side's figures (bare Celery or Switchyard), aggregated over the interleaved rounds."""

    name: str
    own_processes: frozenset[str]
    latencies_ms: list[float] = field(default_factory=list)
    jobs: int = 0
    elapsed_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # this side's throughput phases, summed
    idle_cpu_s: dict[str, float] = field(default_factory=dict)  # the other side's processes meanwhile
    round_p50_ms: list[float] = field(default_factory=list)
    round_jobs_s: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        """p50 over every sequential round trip of this side."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        """p99 over every sequential round trip of this side."""
        return percentile(self.latencies_ms, 99)

    @property
    def jobs_s(self) -> float:
        """Total jobs over the total measured time of the throughput rounds."""
        return self.jobs / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add_sequential(self, measured: SequentialRound) -> None:
        """Add one sequential round."""
        self.latencies_ms.extend(measured.latencies_ms)
        self.failures.extend(measured.failures)
        for stage, values in measured.stages_ms.items():
            self.stages_ms.setdefault(stage, []).extend(values)
        self.round_p50_ms.append(percentile(measured.latencies_ms, 50))

    def add_throughput(self, jobs: int, elapsed_s: float, failures: list[str], cpu: dict[str, float]) -> None:
        """Add one throughput round and the CPU every process used during it."""
        self.jobs += jobs
        self.elapsed_s += elapsed_s
        self.failures.extend(failures)
        self.round_jobs_s.append(jobs / elapsed_s if elapsed_s > 0 else float("nan"))
        for process, seconds in cpu.items():
            target = self.cpu_s if process in self.own_processes else self.idle_cpu_s
            target[process] = target.get(process, 0.0) + seconds
