"""The API's own thread lane for submitting and reading jobs: bounded, and apart from the default pool."""

from __future__ import annotations

import threading
import time

import anyio
import anyio.to_thread

from api.services import ThreadLane


def test_the_lane_runs_at_most_its_size_at_once_and_returns_results() -> None:
    lane = ThreadLane(2)
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return n * 2

    async def main() -> list[int]:
        results: list[int] = []

        async def one(n: int) -> None:
            results.append(await lane.run(work, n))

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(one, n)
        return sorted(results)

    assert anyio.run(main) == [n * 2 for n in range(8)]
    assert peak == 2


def test_a_full_default_pool_does_not_hold_up_the_lane() -> None:
    lane = ThreadLane(1)
    release = threading.Event()

    async def main() -> float:
        async with anyio.create_task_group() as group:
            limiter = anyio.to_thread.current_default_thread_limiter()
            for _ in range(int(limiter.total_tokens)):  # every default thread busy
                group.start_soon(lambda: anyio.to_thread.run_sync(release.wait, 5))
            await anyio.sleep(0.05)
            started = time.monotonic()
            await lane.run(time.sleep, 0)
            waited = time.monotonic() - started
            release.set()
        return waited

    assert anyio.run(main) < 1.0
