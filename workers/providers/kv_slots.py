"""Key/value storage for continuous batching: rows live in fixed slots of preallocated buffers.

Each layer has one buffer ``[slots, kv_heads, capacity, head_dim]`` for keys and one for values,
and one mask ``[slots, capacity]`` says which columns hold a real token of each slot's row. The
columns in use are ``[start, end)``; every row's last token sits in column ``end - 1``, so rows
of different lengths are left-padded within the window. A decode step writes one column at
``end`` for every slot in place, instead of concatenating a grown copy of every layer's cache.
A row joining takes a free slot and only its own columns are copied; a row leaving frees its
slot. Only growing past the buffers or compacting after many rows left copies the whole store.

:class:`SlotCache` hands the store to a transformers model as its ``cache``: attention layers
call ``update`` with the new columns and get views of the window back. Imported only where
generation runs: it imports transformers.
"""

from __future__ import annotations

from typing import Any

from transformers.cache_utils import Cache, DynamicLayer

HEADROOM = 64  # spare columns on each side when the buffers are (re)allocated


class SlotStore:
    """Per-layer key and value buffers, the mask, and the window ``[start, end)`` in use."""

    def __init__(self, keys: list[Any], values: list[Any], mask: Any, start: int, end: int) -> None:
        self.keys = keys
        self.values = values
        self.mask = mask
        self.start = start
        self.end = end

    @classmethod
    def allocate(cls, slots: int, like: Any, layer_count: int, width: int, dtype: Any) -> SlotStore:
        """Empty ``dtype`` buffers for ``slots`` rows of up to ``width`` tokens, shaped like ``like``
        (one layer's keys, ``[rows, kv_heads, tokens, head_dim]``); rows placed in them are
        converted to ``dtype``."""
        import torch

        heads, dim = like.shape[1], like.shape[3]
        capacity = HEADROOM + width + HEADROOM
        return cls(
            [like.new_zeros(slots, heads, capacity, dim, dtype=dtype) for _ in range(layer_count)],
            [like.new_zeros(slots, heads, capacity, dim, dtype=dtype) for _ in range(layer_count)],
            torch.zeros(slots, capacity, dtype=torch.long),
            HEADROOM + width,
            HEADROOM + width,
        )

    @property
    def slots(self) -> int:
        """How many rows the buffers hold."""
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        """Columns in use."""
        return self.end - self.start

    def write(self, layer: int, keys: Any, values: Any) -> tuple[Any, Any]:
        """Store a forward pass's new columns at ``end`` and return the layer's window with them."""
        stop = self.end + keys.shape[-2]
        self.keys[layer][:, :, self.end : stop] = keys
        self.values[layer][:, :, self.end : stop] = values
        return self.keys[layer][:, :, self.start : stop], self.values[layer][:, :, self.start : stop]

    def place(self, slot: int, layers: list[tuple[Any, Any]]) -> None:
        """Put one row's states (``[kv_heads, tokens, head_dim]`` per layer) in ``slot``, ending at
        ``end``; the window widens to the left if the row is longer than it."""
        length = int(layers[0][0].shape[1])
        first = self.end - length
        self.mask[slot] = 0
        self.mask[slot, first : self.end] = 1
        for index, (keys, values) in enumerate(layers):
            self.keys[index][slot, :, first : self.end] = keys
            self.values[index][slot, :, first : self.end] = values
        self.start = min(self.start, first)

    def trim(self, live: list[int]) -> None:
        """Move ``start`` past the columns that are padding for every live slot."""
        if not live:
            return
        used = self.mask[live, self.start : self.end].any(dim=0)
        self.start += int(used.int().argmax()) if bool(used.any()) else self.width

    def relayout(self, slots: list[int | None], left: int, right: int) -> None:
        """New buffers holding the old ``slots`` in order (None: an empty slot) with room for
        ``left`` more columns before the window and ``right`` after it."""
        import torch

        width = self.width
        capacity = left + width + right
        old = [i for i in slots if i is not None]
        new = [position for position, i in enumerate(slots) if i is not None]

        def moved(buffer: Any) -> Any:
            fresh = buffer.new_zeros(len(slots), buffer.shape[1], capacity, buffer.shape[3])
            fresh[new, :, left : left + width] = buffer[old, :, self.start : self.end]
            return fresh

        self.keys = [moved(buffer) for buffer in self.keys]
        self.values = [moved(buffer) for buffer in self.values]
        mask = torch.zeros(len(slots), capacity, dtype=self.mask.dtype)
        mask[new, left : left + width] = self.mask[old, self.start : self.end]
        self.mask = mask
        self.start, self.end = left, left + width

    def make_room(self, before: int, after: int) -> None:
        """Ensure ``before`` free columns left of the window and ``after`` right of it."""
        capacity = int(self.mask.shape[1])
        if self.start >= before and capacity - self.end >= after:
            return
        self.relayout(list(range(self.slots)), max(before, HEADROOM), max(after, HEADROOM))


class SlotLayer(DynamicLayer):  # type: ignore[misc]
    """One attention layer's view of a :class:`SlotStore`."""

    def __init__(self, store: SlotStore, index: int) -> None:
        super().__init__()
        self.store = store
        self.index = index
        self.is_initialized = True

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Write the new columns and return the window including them."""
        return self.store.write(self.index, key_states, value_states)

    def get_seq_length(self) -> int:
        """Columns in the window before this forward pass."""
        return self.store.width

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        """The attention mask's key length and offset for ``query_length`` new columns."""
        return self.store.width + query_length, 0


def slot_cache(store: SlotStore, layer_count: int) -> Any:
    """A transformers ``Cache`` whose layers read and write ``store``."""
    return Cache(layers=[SlotLayer(store, index) for index in range(layer_count)])
