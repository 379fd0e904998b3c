"""One running batch of the local model: its rows, their prefill, their slots and one decode step.

:class:`~workers.providers.local_engine.GenerationEngine` owns the thread that drives it: it
admits prefilled rows into free slots between steps, settles the rows that ended and runs the
next step. A row's keys and values live in a slot of a
:class:`~workers.providers.kv_slots.SlotStore`; its prompt's opening may come from the
:class:`~workers.providers.prefix_cache.PrefixCache`. Each row picks its own tokens: greedy
rows take the argmax, sampled rows draw from their own ``torch.Generator`` (seeded ones replay).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from workers.providers.local_weights import LoadedModel, PromptRow, Sampling
from workers.providers.prefix_cache import PrefixCache

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
class DecodeRow:
    """A call in the engine: its prompt, how to sample, its deadline, its answer and its tokens."""

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
        self.generator = row_generator(self.sampling)
        self.peak = 1


def row_generator(sampling: Sampling) -> Any:
    """A sampled row's own ``torch.Generator`` (seeded when the call gave a seed); None for greedy."""
    import torch

    if not sampling.temperature:
        return None
    generator = torch.Generator()
    if sampling.seed is None:
        generator.seed()
    else:
        generator.manual_seed(sampling.seed)
    return generator


def pick_tokens(logits: Any, rows: Sequence[DecodeRow]) -> list[int]:
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
class Prefill:
    """A row whose prompt ran through the model: its key/value states and its first token."""

    row: DecodeRow
    layers: list[tuple[Any, Any]]  # per layer: keys and values [1, kv_heads, prompt tokens, head_dim]
    first_token: int

    @classmethod
    def run(cls, loaded: LoadedModel, row: DecodeRow, prefixes: PrefixCache) -> Prefill:
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


class DecodeBatch:
    """Rows decoding together, each in a slot of one :class:`~workers.providers.kv_slots.SlotStore`."""

    def __init__(self, loaded: LoadedModel, prefills: list[Prefill]) -> None:
        import torch

        from workers.providers.kv_slots import SlotStore, slot_cache

        like = prefills[0].layers[0][0]
        width = max(prefill.layers[0][0].shape[2] for prefill in prefills)
        slots = slot_count(len(prefills))
        self.loaded = loaded
        self.store = SlotStore.allocate(slots, like, len(prefills[0].layers), width, loaded.model.dtype)
        self.slots: list[DecodeRow | None] = [None] * slots
        self.positions = torch.zeros(slots, dtype=torch.long)
        self.cache = slot_cache(self.store, len(prefills[0].layers))
        self.admit(prefills)

    def live(self) -> list[int]:
        """The slots holding a row."""
        return [slot for slot, row in enumerate(self.slots) if row is not None]

    def admit(self, prefills: list[Prefill]) -> list[int]:
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


def hit_stop(loaded: LoadedModel, row: DecodeRow) -> bool:
    """Whether the row's last tokens spell one of its stop strings."""
    stop = row.spec.stop
    if not stop:
        return False
    # A stop string spans at most this many tokens, each at least a character.
    tail = row.tokens[-(max(map(len, stop)) + 1) :]
    text = loaded.tokenizer.decode(tail, skip_special_tokens=True)
    return any(s in text for s in stop)
