"""Embeddings at the provider boundary: every answer is checked before a job can use it."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from schemas.errors import InvalidOutput
from schemas.openai import EmbeddingList, EmbeddingRequest
from schemas.settings import ModelConfig
from workers.providers.embedding_output import (
    check_embeddings,
    decode_base64,
    encode_base64,
    finish_embeddings,
    to_embedding_list,
)
from workers.providers.openai_compat import from_embeddings_body, to_embedding_params

MODEL = ModelConfig.model_validate(
    {"provider": "emulator", "model": "emu-embed", "kind": "embedding", "dimensions": 3}
)


def body(vectors: list[Any], indexes: list[int] | None = None) -> dict[str, Any]:
    """An embeddings list body as a provider would send it."""
    indexes = list(range(len(vectors))) if indexes is None else indexes
    data = [
        {"object": "embedding", "index": i, "embedding": v} for i, v in zip(indexes, vectors, strict=True)
    ]
    return {
        "object": "list",
        "data": data,
        "model": "emu-embed",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }


def request(*texts: str, **options: Any) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate({"input": list(texts), **options})


def test_a_good_answer_comes_back_in_input_order() -> None:
    answer = from_embeddings_body(body([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], [1, 0]), request("a", "b"), MODEL)

    assert [item.index for item in answer.data] == [0, 1]
    assert answer.data[0].embedding == [1.0, 0.0, 0.0]
    assert answer.usage.prompt_tokens == 4 and answer.usage.completion_tokens == 0


@pytest.mark.parametrize(
    ("vectors", "indexes", "why"),
    [
        ([[1.0, 0.0, 0.0]], None, "one vector for two inputs"),
        ([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], None, "three vectors for two inputs"),
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0, 0], "an index twice"),
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0, 2], "an index out of range"),
        ([[1.0, 0.0, 0.0], [0.0, 1.0]], None, "vectors of unequal length"),
        ([[1.0, 0.0], [0.0, 1.0]], None, "not the configured dimensions"),
        ([[], []], None, "empty vectors"),
        ([[1.0, float("nan"), 0.0], [1.0, 0.0, 0.0]], None, "a NaN"),
        ([[1.0, float("inf"), 0.0], [1.0, 0.0, 0.0]], None, "an infinity"),
        ([[1.0, 0.0, 0.0], "not base64!"], None, "a broken base64 vector"),
        ([[1.0, 0.0, 0.0], base64.b64encode(b"abc").decode()], None, "base64 that is not float32"),
    ],
)
def test_a_broken_answer_is_invalid_output(vectors: list[Any], indexes: list[int] | None, why: str) -> None:
    with pytest.raises(InvalidOutput):
        from_embeddings_body(body(vectors, indexes), request("a", "b"), MODEL)


def test_a_body_that_is_no_embeddings_list_is_invalid_output() -> None:
    with pytest.raises(InvalidOutput):
        from_embeddings_body({"object": "list", "data": "nope"}, request("a"), MODEL)


def test_requested_dimensions_win_over_the_configured_ones() -> None:
    asked = request("a", dimensions=2)
    assert len(from_embeddings_body(body([[0.6, 0.8]]), asked, MODEL).data[0].embedding) == 2
    with pytest.raises(InvalidOutput):
        from_embeddings_body(body([[1.0, 0.0, 0.0]]), asked, MODEL)


def test_base64_is_little_endian_float32_as_openai_encodes_it() -> None:
    vector = [0.5, -1.25, 3.0]
    encoded = encode_base64(vector)

    assert base64.b64decode(encoded) == struct.pack("<3f", *vector)
    assert decode_base64(encoded) == vector


def test_base64_is_applied_after_the_checks_when_asked() -> None:
    raw = to_embedding_list([[0.5, 0.25, 1.0]], "m", prompt_tokens=2)

    answer = finish_embeddings(raw, request("a", encoding_format="base64"), MODEL)

    assert isinstance(answer.data[0].embedding, str)
    assert decode_base64(answer.data[0].embedding) == [0.5, 0.25, 1.0]


def test_providers_are_always_asked_for_floats_and_the_routed_model() -> None:
    params = to_embedding_params(request("a", encoding_format="base64", model="alias", user="u"), MODEL)

    assert params == {"input": ["a"], "encoding_format": "float", "model": "emu-embed", "user": "u"}


def test_a_base64_answer_from_a_provider_is_decoded_and_checked() -> None:
    vectors = [encode_base64([1.0, 0.0, 0.0]), encode_base64([0.0, 0.0, 1.0])]
    checked = check_embeddings(EmbeddingList.model_validate(body(vectors)), 2, 3)

    assert checked.data[1].embedding == [0.0, 0.0, 1.0]
