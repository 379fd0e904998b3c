"""Fair lanes: the broker priority of a job from its class and its tenant's backlog."""

from __future__ import annotations

import pytest

from workers.dispatch import message_priority, priority_keys


@pytest.mark.parametrize(
    ("priority", "backlogs", "lanes"),
    [
        ("live", [1, 2, 3, 4, 5, 10_000], [0, 1, 2, 2, 3, 3]),
        ("batch", [1, 2, 3, 4, 5, 10_000], [4, 5, 6, 6, 7, 7]),
        ("precompute", [1, 2, 3, 10_000], [8, 9, 9, 9]),
    ],
)
def test_lanes_by_class_and_backlog(priority: str, backlogs: list[int], lanes: list[int]) -> None:
    assert [message_priority(priority, backlog) for backlog in backlogs] == lanes


def test_every_live_lane_comes_before_every_batch_lane_before_precompute() -> None:
    live = {message_priority("live", n) for n in range(1, 100)}
    batch = {message_priority("batch", n) for n in range(1, 100)}
    precompute = {message_priority("precompute", n) for n in range(1, 100)}
    assert max(live) < min(batch) and max(batch) < min(precompute)


def test_a_drifted_negative_backlog_counts_as_empty() -> None:
    assert message_priority("live", -3) == 0


def test_one_redis_list_per_priority_step() -> None:
    keys = priority_keys("tier.small.live")
    assert keys[0] == "tier.small.live" and len(keys) == 10 and len(set(keys)) == 10
