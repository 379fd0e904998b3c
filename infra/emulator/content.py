"""Deterministic replies, embeddings and token counts for the provider emulator.

Tokenizer: a token is a run of word characters or one punctuation mark (regex
`\\w+|[^\\w\\s]`). Each chat message costs its content tokens plus MESSAGE_OVERHEAD, and
every prompt adds REPLY_PRIMING, roughly as OpenAI's tiktoken-based accounting does.
"""

import array
import base64
import hashlib
import math
import re
import sys
import time
import uuid
from functools import lru_cache
from typing import Any

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
EMBEDDING_DIMENSION = 384
SNIPPET_CHARS = 60
FILLER_WORDS = (
    "switch",
    "yard",
    "queue",
    "track",
    "signal",
    "route",
    "freight",
    "engine",
    "depot",
    "relay",
    "ledger",
    "budget",
    "cache",
    "token",
    "window",
    "retry",
    "backoff",
    "worker",
    "tier",
    "batch",
    "webhook",
    "durable",
    "steady",
    "prompt",
    "answer",
)


@lru_cache(maxsize=1024)  # benchmarks resend the same prompts; counting is the hot spot
def count_tokens(text: str) -> int:
    """Count the tokens of a text with the emulator's regex tokenizer."""
    return len(TOKEN_PATTERN.findall(text))


def message_text(message: Any) -> str:
    """Return the text of a chat message whose content is a string or a list of parts."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    """Count the prompt tokens of a chat request: content plus per-message overhead."""
    return REPLY_PRIMING + sum(count_tokens(message_text(m)) + MESSAGE_OVERHEAD for m in messages)


def reply_text(messages: list[Any]) -> str:
    """Build the deterministic reply to a conversation: a quote, a digest and filler words."""
    user_turns = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    quoted = message_text((user_turns or messages)[-1])
    snippet = " ".join(quoted.split())[:SNIPPET_CHARS]
    transcript = "\n".join(f"{m.get('role')}:{message_text(m)}" for m in messages)
    digest = hashlib.blake2b(transcript.encode(), digest_size=16).digest()
    words = [FILLER_WORDS[b % len(FILLER_WORDS)] for b in digest[1 : 9 + digest[0] % 8]]
    return f"Emulated answer to: {snippet} [{digest[:4].hex()}] {' '.join(words)}."


def truncate_tokens(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut a text after max_tokens tokens; say whether anything was cut."""
    if max_tokens is None or count_tokens(text) <= max_tokens:
        return text, False
    for index, match in enumerate(TOKEN_PATTERN.finditer(text)):
        if index == max_tokens:
            return text[: match.start()].rstrip(), True
    return text, False


def chat_completion(model: str, content: str, finish: str, usage: tuple[int, int]) -> dict[str, Any]:
    """Build an OpenAI `chat.completion` object."""
    prompt, completion = usage
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "system_fingerprint": "fp_emulator",
    }


@lru_cache(maxsize=1024)
def embedding_vector(text: str, dimension: int = EMBEDDING_DIMENSION) -> tuple[float, ...]:
    """Return a deterministic unit vector derived from a hash of the text."""
    raw = array.array("h", hashlib.shake_256(text.encode()).digest(2 * dimension))
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return tuple(v / norm for v in raw)


def encode_vector(vector: tuple[float, ...], encoding_format: str) -> list[float] | str:
    """Encode a vector as floats or as base64 little-endian float32, as OpenAI does."""
    if encoding_format != "base64":
        return list(vector)
    packed = array.array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def embeddings_list(model: str, texts: list[str], dimension: int, encoding_format: str) -> dict[str, Any]:
    """Build an OpenAI embeddings `list` object for the given texts."""
    tokens = sum(count_tokens(t) for t in texts)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": encode_vector(embedding_vector(t, dimension), encoding_format),
        }
        for i, t in enumerate(texts)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
