"""Continuous batching for the local model: rows join and leave a running batch between steps.

One engine thread per model owns the model's forward passes. A call waiting for the model is
admitted between two decode steps as soon as the running batch has a free slot: its prompt is
prefilled (reusing cached states of its opening, :mod:`workers.providers.prefix_cache`), its
keys and values go into a free slot of the batch's store (:mod:`workers.providers.kv_slots`),
and from the next step on it decodes with the others. A row that ends (end token, token
budget, stop string or its caller's deadline) is answered at once and leaves the batch, so its
slot goes to the next waiting call instead of idling until the longest row ends.

When the engine is idle, the first call waits up to ``max_wait_ms`` for others to arrive, so
that a burst starts together. Each row picks its own tokens: greedy rows take the argmax,
sampled rows draw from their own ``torch.Generator`` (seeded ones replay).

A forward pass that raises fails nobody outright: every row that was in it runs again alone
from its prompt, and only a row that fails alone gets the error (docs/worker-batching.md).
"""

from __future__ import annotations

import queue
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import structlog

from schemas.errors import ProviderTimeout, ProviderUnavailable
from workers.providers.decode_batch import (
    DecodeBatch,
    DecodeRow,
    GeneratedRow,
    Prefill,
    hit_stop,
    row_generator,
)
from workers.providers.local_weights import LoadedModel, PromptRow, Sampling, end_token_ids
from workers.providers.prefix_cache import PrefixCache
from workers.providers.served_queue import ServedQueue

__all__ = ["GeneratedRow", "GenerationEngine"]

log = structlog.get_logger("switchyard.local_engine")


class GenerationEngine:
    """Runs every generation of one local model, continuously batched, on its own thread.

    ``batch_sizes`` counts admissions by how many rows joined the batch together;
    ``solo_retries`` counts rows run again alone after a forward pass with them raised.
    """

    def __init__(
        self,
        load: Callable[[], LoadedModel],
        max_rows: int,
        max_wait_ms: float,
        name: str,
        prefix_cache_blocks: int,
    ) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self._load = load
        self.max_rows = max_rows
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self.name = name
        self.batch_sizes: Counter[int] = Counter()
        self.solo_retries = 0
        self.prefixes = PrefixCache(prefix_cache_blocks)
        self._inbox: ServedQueue[DecodeRow] = ServedQueue(self._loop, f"engine-{name}")

    def generate(self, row: PromptRow, sampling: Sampling, timeout_s: float, grace_s: float) -> GeneratedRow:
        """``row`` generated in whatever batch is running; waits at most ``timeout_s + grace_s``."""
        answer = self.submit(row, sampling, timeout_s)
        try:
            return answer.result(timeout=timeout_s + grace_s)
        except FutureTimeout:
            answer.cancel()  # still queued: the engine drops it instead of running it
            raise ProviderTimeout(f"no answer from the {self.name} engine within {timeout_s:.0f}s") from None

    def submit(self, row: PromptRow, sampling: Sampling, timeout_s: float) -> Future[GeneratedRow]:
        """Queue ``row`` for generation; its future answers when the row ends."""
        waiting = DecodeRow(row, sampling, time.monotonic() + timeout_s, generator=row_generator(sampling))
        self._inbox.put(waiting)
        return waiting.answer

    def _loop(self) -> None:
        batch: DecodeBatch | None = None
        pending: dict[int, int] = {}  # per live slot, the token its row feeds in next
        while True:
            newcomers = self._admit(waiting_for_first=batch is None, free=self.max_rows - _size(batch))
            try:
                if newcomers:
                    batch = self._take_in(batch, pending, newcomers)
                if batch is not None:
                    batch = self._advance(batch, pending)
            except Exception as error:  # the engine thread must answer every row it holds
                log.exception("engine_failed", engine=self.name)
                held = [row for row in batch.slots if row is not None] if batch is not None else []
                for row in held + newcomers:
                    if not row.answer.done():
                        row.answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))
                batch = None
                pending.clear()

    def _admit(self, waiting_for_first: bool, free: int) -> list[DecodeRow]:
        """Waiting rows for the free slots: when idle, the first and whatever comes within the wait."""
        admitted: list[DecodeRow] = []
        deadline = None
        if waiting_for_first:
            first = self._inbox.items.get()
            deadline = time.monotonic() + self.max_wait_s
            if first.answer.set_running_or_notify_cancel():  # False: its caller gave up
                admitted.append(first)
        while len(admitted) < free:
            try:
                remaining = 0.0 if deadline is None else deadline - time.monotonic()
                items = self._inbox.items
                row = items.get(timeout=remaining) if remaining > 0 else items.get_nowait()
            except queue.Empty:
                break
            if row.answer.set_running_or_notify_cancel():
                admitted.append(row)
        return self._drop_expired(admitted)

    @staticmethod
    def _drop_expired(rows: list[DecodeRow]) -> list[DecodeRow]:
        """The rows whose callers still wait; the others are answered as timed out, unrun."""
        now = time.monotonic()
        for row in rows:
            if now >= row.deadline:
                row.answer.set_result(GeneratedRow([], timed_out=True, batch_size=0))
        return [row for row in rows if now < row.deadline]

    def _take_in(
        self, batch: DecodeBatch | None, pending: dict[int, int], rows: list[DecodeRow]
    ) -> DecodeBatch | None:
        """Prefill ``rows`` one by one and place them in the running batch (or start one)."""
        self.batch_sizes[len(rows)] += 1
        loaded = self._load()
        prefills = [prefill for row in rows if (prefill := self._prefill(loaded, row)) is not None]
        if not prefills:
            return batch
        if batch is None:
            batch = DecodeBatch(loaded, prefills)
            pending.clear()
            slots: list[int] = list(range(len(prefills)))
        else:
            slots = batch.admit(prefills)
        pending.update(zip(slots, (prefill.first_token for prefill in prefills), strict=True))
        return batch

    def _prefill(self, loaded: LoadedModel, row: DecodeRow) -> Prefill | None:
        """The row prefilled, or None when its pass failed (the row is answered with the error)."""
        try:
            return Prefill.run(loaded, row, self.prefixes)
        except RuntimeError as error:
            row.answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))
            return None

    def _advance(self, batch: DecodeBatch, pending: dict[int, int]) -> DecodeBatch | None:
        """Record each row's pending token, answer the rows that ended, and run one step for the rest."""
        self._settle(batch, pending)
        if not pending:
            return None
        moves = batch.tidy(compact=self._inbox.items.empty() and len(pending) <= len(batch.slots) * 3 // 4)
        tokens = {moves[slot]: token for slot, token in pending.items()}
        try:
            stepped = batch.step(tokens)
        except RuntimeError as error:
            self._run_each_alone(batch.loaded, [row for row in batch.slots if row is not None], error)
            pending.clear()
            return None
        pending.clear()
        pending.update(stepped)
        return batch

    def _settle(self, batch: DecodeBatch, pending: dict[int, int]) -> None:
        """Append each slot's pending token; rows that ended are answered and free their slots."""
        end_ids = end_token_ids(batch.loaded.tokenizer)
        now = time.monotonic()
        sharing = len(pending)
        for slot, token in list(pending.items()):
            row = batch.slots[slot]
            assert row is not None
            row.tokens.append(token)
            row.peak = max(row.peak, sharing)
            timed_out = now >= row.deadline
            ended = (
                token in end_ids
                or len(row.tokens) >= row.spec.max_new_tokens
                or timed_out
                or hit_stop(batch.loaded, row)
            )
            if ended:
                row.answer.set_result(GeneratedRow(row.tokens, timed_out, row.peak))
                batch.release(slot)
                del pending[slot]

    def _run_each_alone(self, loaded: LoadedModel, rows: list[DecodeRow], error: Exception) -> None:
        """After a failed pass: one row fails with the error, several each run again alone."""
        if len(rows) == 1:
            rows[0].answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))
            return
        log.warning("batch_failed", engine=self.name, size=len(rows), error=repr(error))
        for row in rows:
            self.solo_retries += 1
            row.restart()
            self._run_alone(loaded, row)

    def _run_alone(self, loaded: LoadedModel, row: DecodeRow) -> None:
        prefill = self._prefill(loaded, row)
        if prefill is None:
            return
        try:
            batch = DecodeBatch(loaded, [prefill])
            pending = {0: prefill.first_token}
            while True:
                self._settle(batch, pending)
                if not pending:
                    return
                pending = batch.step(pending)
        except RuntimeError as error:
            row.answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))


def _size(batch: DecodeBatch | None) -> int:
    return 0 if batch is None else len(batch.live())
