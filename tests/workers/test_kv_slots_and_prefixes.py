"""The continuous-batching engine's storage: key/value slots and the prompt prefix cache."""

from __future__ import annotations

import torch

from workers.providers.decode_batch import slot_count
from workers.providers.kv_slots import HEADROOM, SlotStore
from workers.providers.prefix_cache import BLOCK, PrefixCache

HEADS, DIM, LAYERS = 2, 4, 3


def states(tokens: int, seed: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, keys and values ``[1, heads, tokens, dim]`` whose every entry tells where it came from."""
    base = torch.arange(tokens, dtype=torch.float32).view(1, 1, tokens, 1).expand(1, HEADS, tokens, DIM)
    return [(base + seed + layer * 1000, -(base + seed + layer * 1000)) for layer in range(LAYERS)]


def test_rows_of_different_lengths_end_in_the_same_column() -> None:
    like = states(1, 0)[0][0]
    store = SlotStore.allocate(2, like, LAYERS, width=5, dtype=torch.float32)
    store.place(0, [(k[0], v[0]) for k, v in states(5, 100)])
    store.place(1, [(k[0], v[0]) for k, v in states(3, 200)])

    assert store.width == 5 and store.start == HEADROOM
    assert store.mask[:, store.start : store.end].tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert store.keys[1][1, 0, store.end - 1, 0].item() == 1000 + 200 + 2  # layer 1, last token of row 1
    keys, values = store.write(0, torch.full((2, HEADS, 1, DIM), 7.0), torch.full((2, HEADS, 1, DIM), 8.0))
    assert keys.shape == (2, HEADS, 6, DIM) and keys[:, :, -1].eq(7).all() and values[:, :, -1].eq(8).all()


def test_a_longer_row_widens_the_window_and_trim_narrows_it_after_it_leaves() -> None:
    store = SlotStore.allocate(2, states(1, 0)[0][0], LAYERS, width=3, dtype=torch.float32)
    store.place(0, [(k[0], v[0]) for k, v in states(3, 0)])
    store.place(1, [(k[0], v[0]) for k, v in states(6, 0)])
    assert store.width == 6

    store.mask[1] = 0  # row 1 left
    store.trim(live=[0])

    assert store.width == 3
    assert store.mask[0, store.start : store.end].tolist() == [1, 1, 1]


def test_relayout_keeps_each_kept_rows_states_and_adds_room() -> None:
    store = SlotStore.allocate(3, states(1, 0)[0][0], LAYERS, width=4, dtype=torch.float32)
    for slot in range(3):
        store.place(slot, [(k[0], v[0]) for k, v in states(4, slot * 10)])
    before = store.keys[2][2, :, store.start : store.end].clone()

    store.relayout([2, None], left=1, right=200)

    assert store.slots == 2 and store.start == 1 and store.mask.shape[1] == 1 + 4 + 200
    assert torch.equal(store.keys[2][0, :, store.start : store.end], before)
    assert store.mask[1].sum() == 0  # the new empty slot


def test_slot_counts_stay_exact_for_small_batches_and_round_up_to_sixteen() -> None:
    assert [slot_count(n) for n in (1, 2, 3, 4, 12, 16, 17, 32)] == [1, 2, 3, 16, 16, 16, 32, 32]


def test_the_longest_cached_run_of_blocks_is_reused_and_one_token_is_always_left() -> None:
    cache = PrefixCache(max_blocks=16)
    prompt = list(range(2 * BLOCK + 5))
    cache.store(prompt, states(len(prompt), 0), cached=0)
    assert len(cache) == 2

    covered, layers = cache.lookup([*prompt[: 2 * BLOCK], 999])
    assert covered == 2 * BLOCK and layers is not None
    assert torch.equal(layers[0][0], states(len(prompt), 0)[0][0][:, :, : 2 * BLOCK])

    covered, _ = cache.lookup(prompt[: 2 * BLOCK])  # all cached: the last block is run again
    assert covered == BLOCK
    assert cache.lookup([5, *prompt[1:]]) == (0, None)  # a different first token shares nothing


def test_least_recently_used_blocks_go_first_and_zero_blocks_disables_the_cache() -> None:
    cache = PrefixCache(max_blocks=2)
    first, second = [1] * BLOCK + [0], [2] * BLOCK + [0]
    cache.store(first, states(BLOCK + 1, 0), cached=0)
    cache.store(second, states(BLOCK + 1, 0), cached=0)
    cache.lookup(first)  # first is now the most recently used
    cache.store([3] * BLOCK + [0], states(BLOCK + 1, 0), cached=0)

    assert cache.lookup(first)[0] == BLOCK
    assert cache.lookup(second)[0] == 0

    disabled = PrefixCache(max_blocks=0)
    disabled.store(first, states(BLOCK + 1, 0), cached=0)
    assert len(disabled) == 0
