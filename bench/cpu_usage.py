"""CPU used per process, read from /proc: steadier than wall time on a shared machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

from infra.launch import ProcessGroup

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SHARED_SERVERS = {"redis-server": "Redis server", "postgres": "PostgreSQL server"}


def _process_table() -> list[tuple[int, int, str, float]]:
    """(pid, process group, command name, CPU seconds) of every process, from /proc."""
    rows = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rows.append((int(entry), int(fields[2]), name, cpu))
    return rows


def cpu_snapshot(procs: ProcessGroup) -> dict[str, float]:
    """CPU seconds used so far by this process, each started process group and the servers."""
    groups = {process.pid: name for name, process in procs.running.items()}
    totals: dict[str, float] = {"benchmark client": time.process_time()}
    for _pid, pgid, name, cpu in _process_table():
        label = groups.get(pgid) or SHARED_SERVERS.get(name)
        if label is not None:
            totals[label] = totals.get(label, 0.0) + cpu
    return totals


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each entry used between two snapshots."""
    return {name: after[name] - before.get(name, 0.0) for name in after}
