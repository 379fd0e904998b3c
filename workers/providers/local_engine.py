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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import structlog

from schemas.errors import ProviderTimeout, ProviderUnavailable
from workers.providers.local_weights import LoadedModel, PromptRow, Sampling, end_token_ids
from workers.providers.prefix_cache import PrefixCache
from workers.providers.served_queue import ServedQueue

log = structlog.get_logger("switchyard.local_engine")
# float32 matrix products with 4 to 15 rows take a slow path on the CPU's BLAS: measured here,
# SmolLM2's vocabulary projection took 55 ms for 12 rows and 29 ms for 16. So a decode step
# runs a multiple of 16 slots (free ones ride along) once more than SMALL_BATCH rows decode.
SMALL_BATCH = 3
ROW_MULTIPLE = 16


@dataclass(frozen=True)
class GeneratedRow:
    """A row's new tokens (an end token, if it met one, last) and how it ended."""

    tokens: list[int]
    timed_out: bool
    batch_size: int  # the most rows that ran a step together while this one was in the batch


@dataclass(eq=False)
class _Row:
    spec: PromptRow
    sampling: Sampling
    deadline: float
    answer: Future[GeneratedRow] = field(default_factory=Future)
    tokens: list[int] = field(default_factory=list)
    generator: Any = None  # torch.Generator for sampled rows
    peak: int = 1

    def restart(self) -> None:
        """Forget what was generated, to run again from the prompt."""
        self.tokens = []
        self.generator = _generator(self.sampling)
        self.peak = 1


def _generator(sampling: Sampling) -> Any:
    import torch

    if not sampling.temperature:
        return None
    generator = torch.Generator()
    if sampling.seed is None:
        generator.seed()
    else:
        generator.manual_seed(sampling.seed)
    return generator


def pick_tokens(logits: Any, rows: Sequence[_Row]) -> list[int]:
    """Each row's next token from its last-position logits ``[rows, vocab]``."""
    import torch

    picked: list[int] = logits.argmax(dim=-1).tolist()
    for index, row in enumerate(rows):
        temperature = row.sampling.temperature
        if not temperature:
            continue
        probs = torch.softmax(logits[index].float() / temperature, dim=-1)
        top_p = row.sampling.top_p
        if top_p is not None and top_p < 1.0:
            ordered, order = probs.sort(descending=True)
            # Keep the smallest set of most likely tokens whose mass reaches top_p.
            outside = ordered.cumsum(-1) - ordered > top_p
            probs = torch.zeros_like(probs).scatter(0, order, ordered.masked_fill(outside, 0.0))
        picked[index] = int(torch.multinomial(probs, 1, generator=row.generator))
    return picked


@dataclass
class _Prefill:
    """A row whose prompt ran through the model: its key/value states and its first token."""

    row: _Row
    layers: list[tuple[Any, Any]]  # per layer: keys and values [1, kv_heads, prompt tokens, head_dim]
    first_token: int

    @classmethod
    def run(cls, loaded: LoadedModel, row: _Row, prefixes: PrefixCache) -> _Prefill:
        """Prefill ``row``'s prompt, reusing the cached states of its opening, and pick its first token."""
        import torch
        from transformers import DynamicCache

        prompt = row.spec.prompt_ids
        cached, prefix = prefixes.lookup(prompt)
        with torch.inference_mode():
            out = forward(
                loaded.reader,
                input_ids=torch.tensor([prompt[cached:]]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                position_ids=torch.arange(cached, len(prompt)).unsqueeze(0),
                cache=DynamicCache(ddp_cache_data=prefix) if prefix else None,
                use_cache=True,
                logits_to_keep=1,
            )
        layers = [(layer.keys, layer.values) for layer in out.cache.layers]
        prefixes.store(prompt, layers, cached)
        return cls(row, layers, pick_tokens(out.logits[:, -1], [row])[0])


class _Batch:
    """Rows decoding together, each in a slot of one :class:`~workers.providers.kv_slots.SlotStore`."""

    def __init__(self, loaded: LoadedModel, prefills: list[_Prefill]) -> None:
        import torch

        from workers.providers.kv_slots import SlotStore, slot_cache

        like = prefills[0].layers[0][0]
        width = max(prefill.layers[0][0].shape[2] for prefill in prefills)
        slots = slot_count(len(prefills))
        self.loaded = loaded
        self.store = SlotStore.allocate(slots, like, len(prefills[0].layers), width, loaded.model.dtype)
        self.slots: list[_Row | None] = [None] * slots
        self.positions = torch.zeros(slots, dtype=torch.long)
        self.cache = slot_cache(self.store, len(prefills[0].layers))
        self.admit(prefills)

    def live(self) -> list[int]:
        """The slots holding a row."""
        return [slot for slot, row in enumerate(self.slots) if row is not None]

    def admit(self, prefills: list[_Prefill]) -> list[int]:
        """Place prefilled rows in free slots (growing the store if needed); the slots they took."""
        import torch

        free = [slot for slot, row in enumerate(self.slots) if row is None]
        store = self.store
        if len(prefills) > len(free):
            missing = slot_count(len(self.slots) - len(free) + len(prefills)) - len(self.slots)
            store.relayout(
                [*range(store.slots), *[None] * missing], store.start, store.mask.shape[1] - store.end
            )
            self.slots += [None] * missing
            self.positions = torch.cat([self.positions, self.positions.new_zeros(missing)])
            free = [slot for slot, row in enumerate(self.slots) if row is None]
        longest = max(prefill.layers[0][0].shape[2] for prefill in prefills)
        store.make_room(max(0, longest - store.width), 0)
        taken = free[: len(prefills)]
        for slot, prefill in zip(taken, prefills, strict=True):
            store.place(slot, [(keys[0], values[0]) for keys, values in prefill.layers])
            self.slots[slot] = prefill.row
            self.positions[slot] = len(prefill.row.spec.prompt_ids) - 1
        return taken

    def release(self, slot: int) -> None:
        """Free ``slot``: its row has ended."""
        self.slots[slot] = None
        self.store.mask[slot] = 0
        self.positions[slot] = 0

    def tidy(self, compact: bool) -> dict[int, int]:
        """Drop window columns no live row uses; with ``compact``, drop the free slots too.

        Returns where each live row's slot moved (old slot -> new slot).
        """
        import torch

        live = self.live()
        self.store.trim(live)
        slots = slot_count(len(live))
        if not compact or slots >= len(self.slots):
            return {slot: slot for slot in live}
        store = self.store
        kept: list[int | None] = [*live, *[None] * (slots - len(live))]
        store.relayout(kept, store.start, store.mask.shape[1] - store.end)
        self.slots = [self.slots[slot] for slot in live] + [None] * (slots - len(live))
        self.positions = torch.cat([self.positions[live], self.positions.new_zeros(slots - len(live))])
        return {slot: moved for moved, slot in enumerate(live)}

    def step(self, tokens: dict[int, int]) -> dict[int, int]:
        """One decode step: each live slot's token in, each live slot's following token out."""
        import torch

        store = self.store
        store.make_room(0, 1)
        live = self.live()
        ids = torch.full((store.slots, 1), _pad_id(self.loaded))
        ids[live, 0] = torch.tensor([tokens[slot] for slot in live])
        # A free slot attends to its own new column only, so its (unused) row stays finite.
        store.mask[:, store.end] = 1
        self.positions[live] += 1
        with torch.inference_mode():
            out = forward(
                self.loaded.model,
                input_ids=ids,
                attention_mask=store.mask[:, store.start : store.end + 1],
                position_ids=self.positions.unsqueeze(1),
                cache=self.cache,
                use_cache=True,
            )
        store.end += 1
        rows = [row for row in self.slots if row is not None]
        picked = pick_tokens(out.logits[live, -1], rows)
        return dict(zip(live, picked, strict=True))


def slot_count(rows: int) -> int:
    """Slots for ``rows`` rows: up to SMALL_BATCH exactly, beyond that a multiple of ROW_MULTIPLE."""
    if rows <= SMALL_BATCH:
        return rows
    return -(-rows // ROW_MULTIPLE) * ROW_MULTIPLE


def forward(model: Any, **inputs: Any) -> Any:
    """One forward pass of the model (a seam the tests use to inject a failing pass)."""
    return model(**inputs)


def _pad_id(loaded: LoadedModel) -> int:
    tokenizer = loaded.tokenizer
    pad_id: int = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    return pad_id


def _hit_stop(loaded: LoadedModel, row: _Row) -> bool:
    """Whether the row's last tokens spell one of its stop strings."""
    stop = row.spec.stop
    if not stop:
        return False
    # A stop string spans at most this many tokens, each at least a character.
    tail = row.tokens[-(max(map(len, stop)) + 1) :]
    text = loaded.tokenizer.decode(tail, skip_special_tokens=True)
    return any(s in text for s in stop)


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
        self._inbox: ServedQueue[_Row] = ServedQueue(self._loop, f"engine-{name}")

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
        waiting = _Row(row, sampling, time.monotonic() + timeout_s, generator=_generator(sampling))
        self._inbox.put(waiting)
        return waiting.answer

    def _loop(self) -> None:
        batch: _Batch | None = None
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

    def _admit(self, waiting_for_first: bool, free: int) -> list[_Row]:
        """Waiting rows for the free slots: when idle, the first and whatever comes within the wait."""
        admitted: list[_Row] = []
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
    def _drop_expired(rows: list[_Row]) -> list[_Row]:
        """The rows whose callers still wait; the others are answered as timed out, unrun."""
        now = time.monotonic()
        for row in rows:
            if now >= row.deadline:
                row.answer.set_result(GeneratedRow([], timed_out=True, batch_size=0))
        return [row for row in rows if now < row.deadline]

    def _take_in(self, batch: _Batch | None, pending: dict[int, int], rows: list[_Row]) -> _Batch | None:
        """Prefill ``rows`` one by one and place them in the running batch (or start one)."""
        self.batch_sizes[len(rows)] += 1
        loaded = self._load()
        prefills = [prefill for row in rows if (prefill := self._prefill(loaded, row)) is not None]
        if not prefills:
            return batch
        if batch is None:
            batch = _Batch(loaded, prefills)
            pending.clear()
            slots: list[int] = list(range(len(prefills)))
        else:
            slots = batch.admit(prefills)
        pending.update(zip(slots, (prefill.first_token for prefill in prefills), strict=True))
        return batch

    def _prefill(self, loaded: LoadedModel, row: _Row) -> _Prefill | None:
        """The row prefilled, or None when its pass failed (the row is answered with the error)."""
        try:
            return _Prefill.run(loaded, row, self.prefixes)
        except RuntimeError as error:
            row.answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))
            return None

    def _advance(self, batch: _Batch, pending: dict[int, int]) -> _Batch | None:
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

    def _settle(self, batch: _Batch, pending: dict[int, int]) -> None:
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
                or _hit_stop(batch.loaded, row)
            )
            if ended:
                row.answer.set_result(GeneratedRow(row.tokens, timed_out, row.peak))
                batch.release(slot)
                del pending[slot]

    def _run_each_alone(self, loaded: LoadedModel, rows: list[_Row], error: Exception) -> None:
        """After a failed pass: one row fails with the error, several each run again alone."""
        if len(rows) == 1:
            rows[0].answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))
            return
        log.warning("batch_failed", engine=self.name, size=len(rows), error=repr(error))
        for row in rows:
            self.solo_retries += 1
            row.restart()
            self._run_alone(loaded, row)

    def _run_alone(self, loaded: LoadedModel, row: _Row) -> None:
        prefill = self._prefill(loaded, row)
        if prefill is None:
            return
        try:
            batch = _Batch(loaded, [prefill])
            pending = {0: prefill.first_token}
            while True:
                self._settle(batch, pending)
                if not pending:
                    return
                pending = batch.step(pending)
        except RuntimeError as error:
            row.answer.set_exception(ProviderUnavailable(f"local generation failed: {error}"))


def _size(batch: _Batch | None) -> int:
    return 0 if batch is None else len(batch.live())
