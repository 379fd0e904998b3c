"""Prompt prefix caching for the local model: the keys and values of prompt openings seen before.

Prompts of one workload share their opening: the chat template, the system prompt, the
instruction before the document. A prompt's key/value states are stored in blocks of
``BLOCK`` tokens, each under the whole token prefix it ends, so a block is reused only by a
prompt that starts with exactly the same tokens. A new prompt takes the longest run of cached
blocks from its start, and only the rest of it runs through the model. The least recently
used blocks are dropped past ``max_blocks`` (each holds ``BLOCK`` tokens of every layer).

Keys and values of a token depend only on the tokens before it, so a reused block holds the
same states a full prefill computes, up to float rounding (docs/worker-batching.md).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

BLOCK = 16

Layers = list[tuple[Any, Any]]  # per layer: keys and values [1, kv_heads, tokens, head_dim]


class PrefixCache:
    """Least-recently-used blocks of prompt key/value states, keyed by the prefix they end."""

    def __init__(self, max_blocks: int) -> None:
        self.max_blocks = max_blocks
        self.hits = 0  # prompt tokens answered from the cache
        self.misses = 0  # prompt tokens that ran through the model
        self._blocks: OrderedDict[tuple[int, ...], Layers] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def lookup(self, prompt: list[int]) -> tuple[int, Layers | None]:
        """How many leading tokens of ``prompt`` are cached, and their states joined.

        At least one token is always left to run, so that the model gives the next token's logits.
        """
        import torch

        found: list[Layers] = []
        covered = 0
        while covered + BLOCK < len(prompt):
            key = tuple(prompt[: covered + BLOCK])
            block = self._blocks.get(key)
            if block is None:
                break
            self._blocks.move_to_end(key)
            found.append(block)
            covered += BLOCK
        self.hits += covered
        self.misses += len(prompt) - covered
        if not found:
            return 0, None
        if len(found) == 1:
            return covered, found[0]
        joined = [
            (
                torch.cat([block[i][0] for block in found], dim=2),
                torch.cat([block[i][1] for block in found], dim=2),
            )
            for i in range(len(found[0]))
        ]
        return covered, joined

    def store(self, prompt: list[int], layers: Layers, cached: int) -> None:
        """Keep the full blocks of ``prompt`` past the first ``cached`` tokens, from its states."""
        if self.max_blocks <= 0:
            return
        for end in range(cached + BLOCK, len(prompt) + 1, BLOCK):
            key = tuple(prompt[:end])
            if key in self._blocks:
                self._blocks.move_to_end(key)
                continue
            start = end - BLOCK
            self._blocks[key] = [
                (keys[:, :, start:end].clone(), values[:, :, start:end].clone()) for keys, values in layers
            ]
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)
