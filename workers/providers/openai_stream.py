"""Streamed chat completions through the openai SDK: relay each text delta, assemble the answer.

The request asks for ``stream_options.include_usage``, so the last chunk carries the usage;
a stream without it is malformed output (usage and cost accounting need it). The assembled
``chat.completion`` is validated like any other answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from openai.types.chat import ChatCompletionChunk

from schemas import errors

TextSink = Callable[[str], None]


def stream_params(params: dict[str, Any]) -> dict[str, Any]:
    """The SDK arguments of a streamed call: the same request, with the usage asked for."""
    return {**params, "stream": True, "stream_options": {"include_usage": True}}


def relay(chunks: Iterable[ChatCompletionChunk], on_text: TextSink) -> dict[str, Any]:
    """Send each content delta of the first choice to ``on_text``; the assembled completion body."""
    text: list[str] = []
    finish: str | None = None
    usage: Any = None
    head: ChatCompletionChunk | None = None
    for chunk in chunks:
        head = head or chunk
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            if choice.delta.content:
                text.append(choice.delta.content)
                on_text(choice.delta.content)
            finish = choice.finish_reason or finish
    if head is None:
        raise errors.InvalidOutput("The provider's stream ended before any chunk.")
    if usage is None:
        raise errors.InvalidOutput("The provider's stream carried no usage chunk.")
    return {
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "".join(text)}, "finish_reason": finish}
        ],
        "usage": usage.model_dump(),
    }
