"""The job waiter's memory of jobs its process accepted (api/job_waiter.py), on real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis import Redis

from api import job_waiter
from api.job_waiter import JobWaiter

CHANNEL = "sytest-waiter-events"


def with_waiter(redis_url: str, scenario: Callable[[JobWaiter], Awaitable[None]]) -> None:
    """Run ``scenario`` on an event loop with a subscribed waiter."""

    async def run() -> None:
        waiter = JobWaiter(redis_url, CHANNEL)
        await waiter.start()
        assert waiter.live
        try:
            await scenario(waiter)
        finally:
            await waiter.stop()

    asyncio.run(run())


def _final_event(job_id: str, tenant_id: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "tenant_id": tenant_id,
        "status": status,
        "job": {"id": job_id, "status": status},
    }


async def _publish(redis_url: str, event: dict[str, Any]) -> None:
    Redis.from_url(redis_url).publish(CHANNEL, json.dumps(event))
    await asyncio.sleep(0.1)  # the subscription reads it on this loop


def test_an_expected_job_is_known_to_its_tenant_only(redis_url: str) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        waiter.expect("job_a", "ten_1")

        known = waiter.recent("job_a", "ten_1")

        assert known is not None and known.final_body is None
        assert waiter.recent("job_a", "ten_2") is None
        assert waiter.recent("job_b", "ten_1") is None

    with_waiter(redis_url, scenario)


def test_the_final_event_of_an_expected_job_is_kept(redis_url: str) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        waiter.expect("job_a", "ten_1")

        await _publish(redis_url, _final_event("job_a", "ten_1"))

        known = waiter.recent("job_a", "ten_1")
        assert known is not None and known.final_body is not None
        assert json.loads(known.final_body) == {"id": "job_a", "status": "succeeded"}

    with_waiter(redis_url, scenario)


def test_an_event_naming_another_tenant_is_not_kept(redis_url: str) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        waiter.expect("job_a", "ten_1")

        await _publish(redis_url, _final_event("job_a", "ten_other"))

        known = waiter.recent("job_a", "ten_1")
        assert known is not None and known.final_body is None

    with_waiter(redis_url, scenario)


def test_events_of_jobs_not_expected_are_not_kept(redis_url: str) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        await _publish(redis_url, _final_event("job_z", "ten_1"))

        waiter.expect("job_z", "ten_1")

        known = waiter.recent("job_z", "ten_1")
        assert known is not None and known.final_body is None

    with_waiter(redis_url, scenario)


def test_a_forgotten_job_is_not_known(redis_url: str) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        waiter.expect("job_a", "ten_1")

        waiter.forget("job_a")

        assert waiter.recent("job_a", "ten_1") is None

    with_waiter(redis_url, scenario)


def test_after_a_resubscription_earlier_jobs_are_not_vouched_for(redis_url: str) -> None:
    # An event may have been lost while the subscription was down: such a job must be read.
    async def scenario(waiter: JobWaiter) -> None:
        waiter.expect("job_before", "ten_1")

        waiter._resubscribed()  # what the subscription calls after it reconnects
        waiter.expect("job_after", "ten_1")

        assert waiter.recent("job_before", "ten_1") is None
        assert waiter.recent("job_after", "ten_1") is not None

    with_waiter(redis_url, scenario)


def test_a_waiter_without_its_subscription_vouches_for_nothing(redis_url: str) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        waiter.expect("job_a", "ten_1")

        await waiter.stop()

        assert not waiter.live
        assert waiter.recent("job_a", "ten_1") is None

    with_waiter(redis_url, scenario)


def test_jobs_are_forgotten_after_recent_s(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(waiter: JobWaiter) -> None:
        clock = [1000.0]
        monkeypatch.setattr(job_waiter.time, "monotonic", lambda: clock[0])
        waiter.expect("job_old", "ten_1")

        clock[0] += job_waiter.RECENT_S + 0.1
        waiter.expect("job_new", "ten_1")  # prunes what has expired

        assert waiter.recent("job_old", "ten_1") is None
        assert "job_old" not in waiter._recent
        assert waiter.recent("job_new", "ten_1") is not None

    with_waiter(redis_url, scenario)
