"""Worker-side batching on the real local models: SmolLM2 through the collector, MiniLM embeddings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests_support import TEST_CONFIG

from schemas.errors import ContextTooLong, ProviderBadRequest, ProviderError
from schemas.openai import ChatCompletion, ChatRequest, EmbeddingList, EmbeddingRequest
from schemas.settings import ModelConfig, Settings, load_settings
from workers.providers import decode_batch
from workers.providers.local import LocalProvider

MODEL_DIR = Path(__file__).resolve().parents[2] / "var" / "models"  # shared with the e2e stack
TIMEOUT_S = 120.0
# Different lengths, so the batch is left-padded.
PROMPTS = [
    "Name a fruit.",
    "What is the capital of France?",
    "Summarise in one sentence: the committee met on Tuesday to review the budget and agreed "
    "to postpone the new library wing until the next fiscal year.",
    "Write a haiku about the sea.",
    "List three colours of the rainbow, separated by commas, and nothing else.",
]


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = load_settings(
        config_file=TEST_CONFIG, var_dir=tmp_path_factory.mktemp("var"), model_dir=MODEL_DIR
    )
    settings.providers["local"] = settings.providers["local"].model_copy(
        update={"max_batch_size": 8, "max_batch_wait_ms": 1_000}
    )
    return settings


@pytest.fixture(scope="module")
def provider(local_settings: Settings) -> Iterator[LocalProvider]:
    local = LocalProvider(local_settings.providers["local"], local_settings)
    yield local
    local.close()


@pytest.fixture(scope="module")
def smollm2(local_settings: Settings) -> ModelConfig:
    return local_settings.models["smollm2"]


@pytest.fixture(scope="module")
def minilm(local_settings: Settings) -> ModelConfig:
    return local_settings.models["minilm"]


def ask(question: str, max_tokens: int = 24) -> ChatRequest:
    return ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens}
    )


def text_of(completion: ChatCompletion) -> str:
    return completion.choices[0].message.content or ""


def together(call: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """Call ``call`` on every item from its own thread at once; each result or raised error."""

    def one(item: Any) -> Any:
        try:
            return call(item)
        except ProviderError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(one, items))


@pytest.fixture(scope="module")
def single_answers(provider: LocalProvider, smollm2: ModelConfig) -> list[ChatCompletion]:
    """Each prompt's greedy answer, asked alone (a batch of one each)."""
    return [provider.complete(ask(prompt), smollm2, TIMEOUT_S).completion for prompt in PROMPTS]


def test_calls_from_many_threads_run_as_one_batch_with_the_same_greedy_text(
    provider: LocalProvider, smollm2: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    before = dict(provider.batch_sizes()["chat:SmolLM2-135M-Instruct"])

    batched = together(lambda prompt: provider.complete(ask(prompt), smollm2, TIMEOUT_S), PROMPTS)

    after = provider.batch_sizes()["chat:SmolLM2-135M-Instruct"]
    assert after.get(len(PROMPTS), 0) == before.get(len(PROMPTS), 0) + 1  # one batch of all five
    assert len({answer.usage.prompt_tokens for answer in single_answers}) == len(PROMPTS)  # padded
    for response, single in zip(batched, single_answers, strict=True):
        assert response.batch_size == len(PROMPTS)
        assert text_of(response.completion) == text_of(single)
        assert response.completion.usage == single.usage


def test_a_prompt_past_the_context_fails_alone_in_its_batch(
    provider: LocalProvider, smollm2: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    poisoned = "word " * 3000  # past SmolLM2's 2,048-token context
    questions = [PROMPTS[0], poisoned, PROMPTS[1], PROMPTS[3]]

    results = together(lambda prompt: provider.complete(ask(prompt), smollm2, TIMEOUT_S), questions)

    assert isinstance(results[1], ContextTooLong)
    for result, single in zip([results[0], results[2], results[3]], [0, 1, 3], strict=True):
        # The poisoned call is refused in its own thread before it reaches the engine, so it
        # never takes a slot: the other three decode together.
        assert result.batch_size == 3
        assert text_of(result.completion) == text_of(single_answers[single])


def test_when_a_batched_forward_pass_raises_each_row_runs_again_alone(
    provider: LocalProvider,
    smollm2: ModelConfig,
    single_answers: list[ChatCompletion],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_forward = decode_batch.forward
    sizes: list[int] = []

    def forward_failing_batches(model: Any, **inputs: Any) -> Any:
        sizes.append(int(inputs["input_ids"].shape[0]))
        if sizes[-1] > 1:
            raise RuntimeError("out of memory (simulated)")
        return real_forward(model, **inputs)

    monkeypatch.setattr(decode_batch, "forward", forward_failing_batches)

    results = together(lambda prompt: provider.complete(ask(prompt), smollm2, TIMEOUT_S), PROMPTS[:3])

    batched = [index for index, size in enumerate(sizes) if size > 1]
    assert sizes[batched[0]] == 3  # the three decoded together, and that pass failed
    assert set(sizes[batched[0] + 1 :]) == {1}  # then each ran again alone, start to end
    for result, single in zip(results, single_answers[:3], strict=True):
        assert not isinstance(result, ProviderError)
        assert text_of(result.completion) == text_of(single)


def test_a_call_joins_the_running_batch_and_a_short_one_leaves_it_early(
    provider: LocalProvider, smollm2: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    """Continuous batching: the second call does not wait for the first to finish."""
    long_call = ask("Write a long story about a lighthouse keeper.", max_tokens=80)
    alone = provider.complete(long_call, smollm2, TIMEOUT_S).completion

    with ThreadPoolExecutor(max_workers=2) as pool:
        running = pool.submit(provider.complete, long_call, smollm2, TIMEOUT_S)
        time.sleep(1.0)  # the long call is decoding by now (the test batch wait is 1 s)
        assert not running.done()
        short = provider.complete(ask(PROMPTS[1]), smollm2, TIMEOUT_S)
        finished_short_first = not running.done()
        long_answer = running.result()

    assert finished_short_first  # it joined mid-generation and left at its own end
    assert short.batch_size == 2 and long_answer.batch_size == 2
    assert text_of(short.completion) == text_of(single_answers[1])
    assert text_of(long_answer.completion) == text_of(alone)
    assert long_answer.completion.usage == alone.usage


def test_a_cached_prompt_opening_gives_the_same_answers_as_running_it_again(
    local_settings: Settings,
    provider: LocalProvider,
    smollm2: ModelConfig,
    single_answers: list[ChatCompletion],
) -> None:
    uncached = LocalProvider(
        local_settings.providers["local"].model_copy(update={"prefix_cache_blocks": 0}), local_settings
    )
    try:
        answers = [uncached.complete(ask(prompt), smollm2, TIMEOUT_S).completion for prompt in PROMPTS]
        assert uncached.prefix_cache_tokens()["chat:SmolLM2-135M-Instruct"][0] == 0
    finally:
        uncached.close()

    hits, _ = provider.prefix_cache_tokens()["chat:SmolLM2-135M-Instruct"]
    assert hits > 0  # the chat template's opening is shared by every prompt
    for answer, single in zip(answers, single_answers, strict=True):
        assert text_of(answer) == text_of(single)
        assert answer.usage == single.usage


def test_a_seeded_sampled_call_replays_inside_a_batch_of_greedy_ones(
    provider: LocalProvider, smollm2: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    seeded = ask("Tell me a story.", max_tokens=12)
    seeded.temperature, seeded.seed = 1.0, 11
    alone = provider.complete(seeded, smollm2, TIMEOUT_S).completion

    requests = [ask(PROMPTS[0]), seeded, ask(PROMPTS[3])]
    results = together(lambda request: provider.complete(request, smollm2, TIMEOUT_S), requests)

    assert results[1].batch_size == 3
    assert text_of(results[1].completion) == text_of(alone)
    assert text_of(results[0].completion) == text_of(single_answers[0])
    assert text_of(results[2].completion) == text_of(single_answers[3])


def embed_request(*texts: str, **options: Any) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate({"input": list(texts), **options})


def vectors_of(answer: EmbeddingList) -> np.ndarray:
    return np.array([item.embedding for item in answer.data], dtype=np.float32)


def test_embedding_jobs_batched_together_get_their_own_vectors(
    provider: LocalProvider, minilm: ModelConfig
) -> None:
    requests = [
        embed_request("A cat sleeps on the sofa.", "Rain is expected tomorrow."),
        embed_request("The train leaves at noon."),
        embed_request("Interest rates rose again.", "A kitten naps.", "Bread needs yeast."),
    ]
    alone = [provider.embed(request, minilm, TIMEOUT_S) for request in requests]

    batched = together(lambda request: provider.embed(request, minilm, TIMEOUT_S), requests)

    for response, single, request in zip(batched, alone, requests, strict=True):
        assert response.batch_size == 3
        assert len(response.completion.data) == len(request.inputs())
        assert np.allclose(vectors_of(response.completion), vectors_of(single.completion), atol=1e-5)
        assert response.completion.usage == single.completion.usage


def test_a_bad_embedding_request_fails_alone_in_its_batch(
    provider: LocalProvider, minilm: ModelConfig
) -> None:
    requests = [
        embed_request("fine"),
        embed_request("also fine", dimensions=128),  # MiniLM cannot shorten its 384 dimensions
        embed_request("ok", "word " * 400),  # longer than the 256 tokens MiniLM reads
        embed_request("fine again"),
    ]

    results = together(lambda request: provider.embed(request, minilm, TIMEOUT_S), requests)

    assert isinstance(results[1], ProviderBadRequest)
    assert isinstance(results[2], ContextTooLong)
    assert results[0].batch_size == results[3].batch_size == 4
    assert vectors_of(results[0].completion).shape == (1, 384)
