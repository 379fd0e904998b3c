"""The micro-batch collector: batch size and wait, per-member errors, solo retries, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from schemas.errors import ProviderBadRequest, ProviderTimeout
from workers.providers.collector import BatchCollector

POISON = -1


class Recorder:
    """A batch function that doubles numbers, fails POISON alone, and records every batch."""

    def __init__(self, delay_s: float = 0.0, raise_when: Callable[[list[int]], bool] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.raise_when = raise_when or (lambda items: False)
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> Sequence[int | Exception]:
        with self.lock:
            self.batches.append(list(items))
        time.sleep(self.delay_s)
        if self.raise_when(items):
            raise RuntimeError("the whole batch broke")
        return [ProviderBadRequest("poisoned") if item == POISON else item * 2 for item in items]


def submit_all(collector: BatchCollector[int, int], items: list[int], timeout_s: float = 10) -> list[object]:
    """Submit every item from its own thread at once; each one's result or raised error."""

    def one(item: int) -> object:
        try:
            return collector.submit(item, timeout_s)
        except Exception as error:  # the test looks at what each caller got
            return error

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(one, items))


def test_calls_arriving_together_share_one_batch_up_to_max_batch() -> None:
    recorder = Recorder()
    collector = BatchCollector(recorder, max_batch=4, max_wait_ms=300, name="test")

    results = submit_all(collector, list(range(10)))

    assert results == [item * 2 for item in range(10)]
    assert sorted(item for batch in recorder.batches for item in batch) == list(range(10))
    assert max(len(batch) for batch in recorder.batches) == 4
    assert all(len(batch) <= 4 for batch in recorder.batches)
    assert len(recorder.batches) == 3  # 10 calls, at most 4 a batch, all there within the wait
    assert sum(collector.batch_sizes.values()) == 3 and collector.batch_sizes[4] == 2


def test_a_lone_call_waits_at_most_max_wait() -> None:
    collector = BatchCollector(Recorder(), max_batch=8, max_wait_ms=200, name="test")

    started = time.monotonic()
    assert collector.submit(21, timeout_s=5) == 42
    waited = time.monotonic() - started

    assert 0.18 <= waited < 1.5
    assert dict(collector.batch_sizes) == {1: 1}


def test_a_full_batch_runs_without_waiting_out_max_wait() -> None:
    collector = BatchCollector(Recorder(), max_batch=3, max_wait_ms=5_000, name="test")

    started = time.monotonic()
    assert submit_all(collector, [1, 2, 3]) == [2, 4, 6]

    assert time.monotonic() - started < 2.5  # far below the 5 s wait: the batch was full
    assert dict(collector.batch_sizes) == {3: 1}


def test_calls_queued_behind_a_running_batch_go_together_next() -> None:
    recorder = Recorder(delay_s=0.5)
    collector = BatchCollector(recorder, max_batch=8, max_wait_ms=0, name="test")

    first = threading.Thread(target=collector.submit, args=(100, 10))
    first.start()
    time.sleep(0.1)  # the first batch is running now
    rest = submit_all(collector, [1, 2, 3, 4])
    first.join()

    assert rest == [2, 4, 6, 8]
    assert recorder.batches[0] == [100]
    assert sorted(recorder.batches[1]) == [1, 2, 3, 4]


def test_a_poisoned_member_fails_alone_and_its_neighbours_succeed() -> None:
    recorder = Recorder()
    collector = BatchCollector(recorder, max_batch=4, max_wait_ms=300, name="test")

    results = submit_all(collector, [1, POISON, 3, 4])

    assert results[0] == 2 and results[2] == 6 and results[3] == 8
    assert isinstance(results[1], ProviderBadRequest)
    assert len(recorder.batches) == 1  # the error came back per member, no rerun needed
    assert collector.solo_retries == 0


def test_when_the_whole_batch_raises_each_member_is_retried_alone() -> None:
    # The batch call breaks whenever 7 is in a batch with others; alone, 7 still breaks.
    recorder = Recorder(raise_when=lambda items: 7 in items)
    collector = BatchCollector(recorder, max_batch=4, max_wait_ms=300, name="test")

    results = submit_all(collector, [1, 7, 3, 4])

    assert results[0] == 2 and results[2] == 6 and results[3] == 8
    assert isinstance(results[1], RuntimeError)
    assert collector.solo_retries == 4
    assert sorted(recorder.batches[0]) == [1, 3, 4, 7]
    assert sorted(map(tuple, recorder.batches[1:])) == [(1,), (3,), (4,), (7,)]


def test_a_batch_answering_the_wrong_number_of_results_is_rerun_member_by_member() -> None:
    calls: list[list[int]] = []

    def short_by_one(items: list[int]) -> Sequence[int | Exception]:
        calls.append(items)
        return [item * 2 for item in items][: max(1, len(items) - 1)]

    collector = BatchCollector(short_by_one, max_batch=3, max_wait_ms=300, name="test")

    assert submit_all(collector, [1, 2, 3]) == [2, 4, 6]
    assert len(calls) == 4 and collector.solo_retries == 3


def test_a_caller_that_times_out_gets_provider_timeout_and_its_call_is_dropped() -> None:
    recorder = Recorder(delay_s=0.6)
    collector = BatchCollector(recorder, max_batch=1, max_wait_ms=0, name="test")

    blocker = threading.Thread(target=collector.submit, args=(1, 10))
    blocker.start()
    time.sleep(0.1)
    with pytest.raises(ProviderTimeout):
        collector.submit(2, timeout_s=0.2)  # still queued behind the first batch
    blocker.join()
    assert collector.submit(3, timeout_s=5) == 6

    assert [batch for batch in recorder.batches] == [[1], [3]]  # 2 was never run


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BatchCollector(Recorder(), max_batch=0, max_wait_ms=0, name="test")
