"""Embeddings at the provider boundary: build the list object, check a provider's, encode it.

Every adapter passes its answer through :func:`finish_embeddings`: one vector per input, each
index once, every number finite, every vector the same length (the requested ``dimensions``
or the model's configured ones, when set). A provider that breaks any of these answered
``invalid_output``. Vectors are asked for and checked as floats; ``encoding_format: base64``
is applied last, as OpenAI encodes it: little-endian float32 bytes in base64.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import numpy as np

from schemas.errors import InvalidOutput
from schemas.openai import Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage
from schemas.settings import ModelConfig


def to_embedding_list(
    vectors: Sequence[Sequence[float]], model_name: str, prompt_tokens: int
) -> EmbeddingList:
    """An embeddings list object for ``vectors``, in input order."""
    data = [Embedding(index=i, embedding=[float(x) for x in vector]) for i, vector in enumerate(vectors)]
    usage = EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens)
    return EmbeddingList(data=data, model=model_name, usage=usage)


def encode_base64(vector: Sequence[float]) -> str:
    """A vector as OpenAI's base64 encoding: little-endian float32 bytes."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_base64(text: str) -> list[float]:
    """The floats of a base64 vector; InvalidOutput when it is not whole float32 values."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise InvalidOutput("The provider answered an embedding that is not valid base64.") from exc
    if len(raw) % 4:
        raise InvalidOutput("The provider answered a base64 embedding that is not float32 values.")
    return [float(x) for x in np.frombuffer(raw, dtype="<f4")]


def finish_embeddings(result: EmbeddingList, request: EmbeddingRequest, model: ModelConfig) -> EmbeddingList:
    """The checked list, in input order, encoded as the request asked; raises InvalidOutput."""
    checked = check_embeddings(result, len(request.inputs()), request.dimensions or model.dimensions)
    if request.encoding_format == "base64":
        data = [item.model_copy(update={"embedding": encode_base64(_floats(item))}) for item in checked.data]
        return checked.model_copy(update={"data": data})
    return checked


def check_embeddings(result: EmbeddingList, expected_count: int, dimensions: int | None) -> EmbeddingList:
    """``result`` with float vectors sorted by index, if it answers every input properly."""
    if len(result.data) != expected_count:
        raise InvalidOutput(f"The provider gave {len(result.data)} embeddings for {expected_count} inputs.")
    ordered = sorted(result.data, key=lambda item: item.index)
    if [item.index for item in ordered] != list(range(expected_count)):
        raise InvalidOutput("The provider's embedding indexes do not cover each input exactly once.")
    vectors = [_floats(item) for item in ordered]
    lengths = {len(vector) for vector in vectors}
    if len(lengths) != 1 or 0 in lengths:
        raise InvalidOutput(f"The provider answered embeddings of unequal or zero length: {sorted(lengths)}.")
    if dimensions is not None and lengths != {dimensions}:
        raise InvalidOutput(f"The provider answered {lengths.pop()} dimensions; {dimensions} were expected.")
    if not all(math.isfinite(x) for vector in vectors for x in vector):
        raise InvalidOutput("The provider answered an embedding with a non-finite number.")
    data = [item.model_copy(update={"embedding": v}) for item, v in zip(ordered, vectors, strict=True)]
    return result.model_copy(update={"data": data})


def _floats(item: Embedding) -> list[float]:
    return decode_base64(item.embedding) if isinstance(item.embedding, str) else list(item.embedding)
