"""Streamed chat completions, as OpenAI sends them for ``stream: true``.

A finished ``chat.completion`` is cut into ``chat.completion.chunk`` events: a first chunk with
the role, one per token of content, a last one with the finish reason, then (with
``stream_options.include_usage``) a chunk with no choices and the usage, and ``data: [DONE]``.
With ``include_usage`` every other chunk carries ``"usage": null``, as OpenAI's do. The
call's latency is spread over the content chunks, as a model generating tokens would.
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

# Each piece is a token with the whitespace before it, so the pieces join back to the text.
PIECE = re.compile(r"\s*(\w+|[^\w\s])|\s+$")


def pieces(text: str) -> list[str]:
    """The content split into token-sized pieces that concatenate to ``text``."""
    return [match.group(0) for match in PIECE.finditer(text)]


def chunks(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The chunk objects of a streamed reply, in order."""
    choice = completion["choices"][0]
    base = {key: completion[key] for key in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"content": piece}) for piece in pieces(choice["message"]["content"] or "")]
    out.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        out.append({**base, "choices": [], "usage": completion["usage"]})
    return out


async def events(completion: dict[str, Any], include_usage: bool, spread_s: float) -> AsyncIterator[bytes]:
    """The SSE body: one ``data:`` line per chunk, then ``[DONE]``."""
    parts = chunks(completion, include_usage)
    gap = spread_s / max(1, len(parts) - 1)
    for index, part in enumerate(parts):
        if index and gap:
            await asyncio.sleep(gap)
        yield f"data: {json.dumps(part, separators=(',', ':'))}\n\n".encode()
    yield b"data: [DONE]\n\n"


def streamed(
    completion: dict[str, Any], include_usage: bool, spread_s: float, headers: dict[str, str]
) -> StreamingResponse:
    """A ``text/event-stream`` response of the completion's chunks."""
    body = events(completion, include_usage, spread_s)
    return StreamingResponse(body, 200, headers, media_type="text/event-stream")
