"""Token estimates for a call before it is made, where the model has no tokenizer here.

OpenAI's tokenizers (tiktoken) download their BPE files at run time, which this platform
never does. Remote models are therefore estimated: one token per 4 bytes of UTF-8 text,
rounded up, plus 4 tokens per message and 3 for the reply's priming, the overheads OpenAI
documents for chat. For English that is at or above what OpenAI's tokenizers count (about 4
characters per token); for scripts of 3-byte characters it gives one token per 1.33
characters. The estimate only decides what to reserve: after the call the limiter is
corrected to the usage the provider reports (docs/rate-limits.md). The local model counts
with its own tokenizer.
"""

from __future__ import annotations

import json
import math

from schemas.openai import ChatRequest, EmbeddingRequest

BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3


def estimate_prompt_tokens(request: ChatRequest | EmbeddingRequest) -> int:
    """Prompt tokens of a chat or embeddings request, estimated from its text."""
    if isinstance(request, EmbeddingRequest):
        return sum(_text_tokens(text) for text in request.inputs())
    total = REPLY_PRIMING
    for message in request.messages:
        total += MESSAGE_OVERHEAD + _text_tokens(message.text())
    if request.tools:  # tool definitions are part of the prompt
        total += _text_tokens(json.dumps(request.tools))
    return total


def _text_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)
