"""The micro-batch collector: provider calls from many threads of one worker meet in one batch.

The local tier's worker runs its tasks in threads (``-P threads -c N``); each task runs its own
policy chain, and only the provider call is handed to a collector. A daemon thread takes the
first waiting call, keeps collecting until ``max_batch`` calls are in hand or ``max_wait_ms``
have passed since that first call arrived, runs them as one batch and hands each caller its
own result. Calls that queued while a batch ran go together in the next batch at once.

A batch answers per member: a member's error (bad input, context too long) is raised in that
caller only. If the batched call itself raises, every member is run again alone, so one
poisoned member cannot fail its neighbours. Callers wait at most their own timeout; a call
still queued when its caller gives up is dropped, not run.
"""

from __future__ import annotations

import queue
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

from schemas.errors import ProviderTimeout
from workers.providers.served_queue import ServedQueue

Item = TypeVar("Item")
Result = TypeVar("Result")
BatchCall = Callable[[list[Item]], Sequence[Result | Exception]]

log = structlog.get_logger("switchyard.collector")


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    arrived: float = field(default_factory=time.monotonic)
    result: Future[Result] = field(default_factory=Future)


class BatchCollector(Generic[Item, Result]):
    """Gathers single calls from many threads into batched calls of ``run_batch``.

    ``batch_sizes`` counts the batches run by size; ``solo_retries`` counts members run
    again alone after their batch raised.
    """

    def __init__(
        self, run_batch: BatchCall[Item, Result], max_batch: int, max_wait_ms: float, name: str
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self.name = name
        self.batch_sizes: Counter[int] = Counter()
        self.solo_retries = 0
        self._queue: ServedQueue[_Waiting[Item, Result]] = ServedQueue(self._loop, f"collector-{name}")

    def submit(self, item: Item, timeout_s: float) -> Result:
        """``item``'s result from a batch shared with whatever arrives with it; raises its error."""
        waiting: _Waiting[Item, Result] = _Waiting(item)
        self._queue.put(waiting)
        try:
            return waiting.result.result(timeout=timeout_s)
        except FutureTimeout:
            waiting.result.cancel()  # still queued: the collector drops it instead of running it
            raise ProviderTimeout(f"no result from the {self.name} batch within {timeout_s:.0f}s") from None

    def _loop(self) -> None:
        while True:
            batch = self._collect()
            if batch:
                self._run(batch)

    def _collect(self) -> list[_Waiting[Item, Result]]:
        """Up to ``max_batch`` live calls, waiting until ``max_wait_ms`` after the first arrived."""
        batch: list[_Waiting[Item, Result]] = []
        first = self._queue.items.get()
        deadline = first.arrived + self.max_wait_s
        pending: _Waiting[Item, Result] | None = first
        while pending is not None:
            if pending.result.set_running_or_notify_cancel():  # False: its caller gave up
                batch.append(pending)
            if len(batch) >= self.max_batch:
                break
            pending = self._next(deadline)
        return batch

    def _next(self, deadline: float) -> _Waiting[Item, Result] | None:
        remaining = deadline - time.monotonic()
        try:
            items = self._queue.items
            return items.get(timeout=remaining) if remaining > 0 else items.get_nowait()
        except queue.Empty:
            return None

    def _run(self, batch: list[_Waiting[Item, Result]]) -> None:
        self.batch_sizes[len(batch)] += 1
        results = self._call([waiting.item for waiting in batch])
        if isinstance(results, Exception):
            if len(batch) == 1:
                batch[0].result.set_exception(results)
                return
            log.warning("batch_failed", collector=self.name, size=len(batch), error=repr(results))
            results = [self._run_alone(waiting.item) for waiting in batch]
        for waiting, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                waiting.result.set_exception(result)
            else:
                waiting.result.set_result(result)

    def _run_alone(self, item: Item) -> Result | Exception:
        self.solo_retries += 1
        results = self._call([item])
        return results if isinstance(results, Exception) else results[0]

    def _call(self, items: list[Item]) -> Sequence[Result | Exception] | Exception:
        """The batch's per-member results, or the exception the whole call raised."""
        try:
            results = self._run_batch(items)
        except Exception as error:  # the collector thread must answer every waiting caller
            return error
        if len(results) != len(items):
            return RuntimeError(f"the {self.name} batch answered {len(results)} results for {len(items)}")
        return results
