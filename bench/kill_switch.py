"""What the kill switch check costs a provider call, against one bare Redis round trip.

Every attempt asks :class:`workers.kill_switch_board.KillSwitchBoard` for the active switches
(one pipelined ``GET`` + ``HGET``; the parsed switches stay in memory while the version does
not move) and matches them against the call. The baseline is a ``PING`` on the same
connection, the least any Redis check can cost. Figures are per call, the median of rounds,
with 0 and 20 active switches; the last line also gives the cost of the rebuild from the
database that follows a change (or a lost Redis).

    .venv/bin/python bench/kill_switch.py             # local Redis db 15, SQLite in a temp dir
    .venv/bin/python bench/kill_switch.py --redis-url redis://127.0.0.1:6379/14 --calls 5000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import bench_paths  # noqa: F401  (puts the project on sys.path)
from redis import Redis
from sqlalchemy.engine import Engine
from sqlmodel import Session

from schemas.settings import load_settings
from schemas.spend_tables import KillSwitch
from schemas.tables import utcnow
from workers.db import make_engine
from workers.keys import RedisKeys
from workers.kill_switch_board import CallTarget, KillSwitchBoard, announce_change, matching
from workers.migrate import upgrade

TARGET = CallTarget("ten_bench", "key_bench", "small", "emu-small", "emulator")


def per_call_us(function: Callable[[], object], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean microseconds per call of ``function``."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            var_dir=Path(tmp),
            redis_url=args.redis_url,
            database_url="",
            key_prefix=f"bench{uuid.uuid4().hex[:6]}",
        )
        upgrade(settings)
        engine, redis, keys = (
            make_engine(settings),
            Redis.from_url(args.redis_url),
            RedisKeys(settings.key_prefix),
        )
        board = KillSwitchBoard(redis, keys, engine)
        try:
            figures = measure(board, args.calls, args.rounds)
        finally:
            redis.delete(keys.kill_switches, keys.kill_switch_version)
            engine.dispose()
    print(" ".join(f"{name}={value}" for name, value in figures.items()))


def measure(board: KillSwitchBoard, calls: int, rounds: int) -> dict[str, float]:
    """The figures: a PING, the check with none and with 20 switches set, a rebuild."""
    redis, keys = board.redis, board.keys
    ping_us = per_call_us(redis.ping, calls, rounds)
    check_us = per_call_us(lambda: matching(board.active(), TARGET), calls, rounds)
    print(f"bare Redis PING: {ping_us:.1f} us; kill switch check, none set: {check_us:.1f} us")
    add_unmatched(board.engine, 20)
    announce_change(redis, keys)
    check20_us = per_call_us(lambda: matching(board.active(), TARGET), calls, rounds)
    version = redis.get(keys.kill_switch_version) or b""
    rebuild_us = per_call_us(lambda: board.rebuild(version), max(50, calls // 20), rounds)
    print(f"with 20 switches set: {check20_us:.1f} us; rebuild from the database: {rebuild_us:.0f} us")
    return {
        "ping_us": round(ping_us, 1),
        "check_us": round(check_us, 1),
        "check_20_switches_us": round(check20_us, 1),
        "check_over_ping": round(check_us / ping_us, 2),
        "rebuild_us": round(rebuild_us),
    }


def add_unmatched(engine: Engine, count: int) -> None:
    """``count`` active switches of other tenants: the check reads and scans them all."""
    with Session(engine) as session:
        for index in range(count):
            other = f"ten_other{index}"
            session.add(
                KillSwitch(
                    id=f"ks_bench{index}", scope="tenant", value=other, tenant_id=other, created_at=utcnow()
                )
            )
        session.commit()


if __name__ == "__main__":
    main()
