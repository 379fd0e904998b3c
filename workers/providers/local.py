"""The ``local`` provider: SmolLM2-135M-Instruct generating in the worker process, no network.

The model loads on the first call, not at import: every worker imports the adapter registry,
most serve other tiers. Requests that share sampling settings run as one left-padded batch in
one ``generate``; each row stops at its own end token, token budget or stop string.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from schemas.errors import ContextTooLong, ProviderError, ProviderTimeout, ProviderUnavailable
from schemas.openai import ChatCompletion, ChatRequest, Choice, ChoiceMessage, CompletionUsage
from schemas.settings import ModelConfig, ProviderConfig, Settings
from workers.providers.base import ProviderResponse
from workers.providers.local_weights import (
    LoadedModel,
    PromptRow,
    Sampling,
    generate_rows,
    load_model,
)

DEFAULT_MAX_TOKENS = 64
CHATML_TURN = "<|im_start|>{role}\n{content}<|im_end|>\n"
CHATML_REPLY = "<|im_start|>assistant\n"
ROLE_ALIASES = {"developer": "system"}


def chat_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The request's messages as plain role/content dicts a chat template takes."""
    return [
        {"role": ROLE_ALIASES.get(message.role, message.role), "content": message.text()}
        for message in request.messages
    ]


def build_prompt(tokenizer: Any, request: ChatRequest) -> str:
    """The prompt text: the tokenizer's chat template, or SmolLM2's ChatML when it has none."""
    messages = chat_messages(request)
    if getattr(tokenizer, "chat_template", None):
        prompt: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return prompt
    turns = (CHATML_TURN.format(role=m["role"], content=m["content"]) for m in messages)
    return "".join(turns) + CHATML_REPLY


def stop_strings(request: ChatRequest) -> tuple[str, ...]:
    """The request's stop strings as a tuple, empty ones dropped."""
    stop = [request.stop] if isinstance(request.stop, str) else request.stop or []
    return tuple(text for text in stop if text)


def generation_budget(prompt_tokens: int, request: ChatRequest, model: ModelConfig) -> int:
    """How many tokens may be generated; raises ContextTooLong when the prompt leaves no room."""
    room = model.context_window - prompt_tokens
    if room <= 0:
        raise ContextTooLong(
            f"prompt of {prompt_tokens} tokens leaves no room in the context window "
            f"of {model.context_window}",
            prompt_tokens=prompt_tokens,
            context_window=model.context_window,
        )
    requested = request.requested_max_tokens() or DEFAULT_MAX_TOKENS
    return max(1, min(requested, room))


def sampling_key(request: ChatRequest, index: int) -> tuple[Any, ...]:
    """Requests with equal keys can share one ``generate``; seeded ones run alone to replay."""
    if not request.temperature:
        return ("greedy",)
    if request.seed is not None:
        return ("seeded", index)
    return ("sample", request.temperature, request.top_p)


def cut_row(generated: Sequence[int], budget: int, end_ids: set[int]) -> tuple[list[int], bool]:
    """A row's tokens within its budget up to (excluding) the first end token; whether it ended."""
    tokens = list(generated[:budget])
    for position, token in enumerate(tokens):
        if token in end_ids:
            return tokens[:position], True
    return tokens, False


def trim_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """The text up to the earliest stop string, and whether one was found."""
    cuts = [text.find(s) for s in stop if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def to_completion(
    text: str, prompt_tokens: int, completion_tokens: int, finish_reason: str, model_name: str
) -> ChatCompletion:
    """A chat.completion object for one generated answer."""
    message = ChoiceMessage(role="assistant", content=text)
    usage = CompletionUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    return ChatCompletion(
        id=f"chatcmpl-local-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model_name,
        choices=[Choice(index=0, message=message, finish_reason=finish_reason)],
        usage=usage,
    )


class LocalProvider:
    """Runs SmolLM2-135M-Instruct in this process; one lock serialises loading and generation."""

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None

    def load(self) -> LoadedModel:
        """The loaded model, loading (and on first use converting) it now if needed."""
        with self._lock:
            return self._load_locked()

    def estimate_prompt_tokens(self, request: ChatRequest) -> int:
        """Exact prompt tokens, from the model's own tokenizer and chat template."""
        tokenizer = self.load().tokenizer
        return len(tokenizer.encode(build_prompt(tokenizer, request), add_special_tokens=False))

    def complete(self, request: ChatRequest, model: ModelConfig, timeout_s: float) -> ProviderResponse:
        """Run one chat completion."""
        result = self.complete_batch([request], model, timeout_s)[0]
        if isinstance(result, ProviderError):
            raise result
        return result

    def complete_batch(
        self, requests: list[ChatRequest], model: ModelConfig, timeout_s: float
    ) -> list[ProviderResponse | ProviderError]:
        """Run many completions, batched; each result is a response or that request's error."""
        with self._lock:
            loaded = self._load_locked()
            results: dict[int, ProviderResponse | ProviderError] = {}
            groups: dict[tuple[Any, ...], list[int]] = {}
            prepared: dict[int, PromptRow] = {}
            for index, request in enumerate(requests):
                try:
                    prepared[index] = self._prepare(loaded.tokenizer, request, model)
                except ProviderError as error:
                    results[index] = error
                    continue
                groups.setdefault(sampling_key(request, index), []).append(index)
            for indices in groups.values():
                rows = [prepared[i] for i in indices]
                answers = self._run_group(loaded, rows, requests[indices[0]], model, timeout_s)
                for index, answer in zip(indices, answers, strict=True):
                    results[index] = answer
        return [results[index] for index in range(len(requests))]

    def close(self) -> None:
        """Drop the model so its memory can be returned."""
        with self._lock:
            self._loaded = None
        gc.collect()

    def _load_locked(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self.settings)
        return self._loaded

    def _prepare(self, tokenizer: Any, request: ChatRequest, model: ModelConfig) -> PromptRow:
        prompt_ids = tokenizer.encode(build_prompt(tokenizer, request), add_special_tokens=False)
        budget = generation_budget(len(prompt_ids), request, model)
        return PromptRow(list(prompt_ids), budget, stop_strings(request))

    def _run_group(
        self,
        loaded: LoadedModel,
        rows: list[PromptRow],
        request: ChatRequest,
        model: ModelConfig,
        timeout_s: float,
    ) -> list[ProviderResponse | ProviderError]:
        sampling = Sampling(request.temperature, request.top_p, request.seed)
        started = time.monotonic()
        try:
            generated = generate_rows(loaded, rows, sampling, timeout_s)
        except RuntimeError as error:
            return [ProviderUnavailable(f"local generation failed: {error}") for _ in rows]
        timed_out = time.monotonic() - started >= timeout_s
        return [
            _answer(loaded.tokenizer, row, tokens, model, timed_out)
            for row, tokens in zip(rows, generated, strict=True)
        ]


def _answer(
    tokenizer: Any, row: PromptRow, generated: list[int], model: ModelConfig, timed_out: bool
) -> ProviderResponse | ProviderError:
    end_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    tokens, ended = cut_row(generated, row.max_new_tokens, end_ids)
    text, stopped = trim_at_stop(tokenizer.decode(tokens, skip_special_tokens=True), row.stop)
    full = len(tokens) >= row.max_new_tokens
    if timed_out and not (ended or stopped or full):
        return ProviderTimeout("local generation ran out of time", completion_tokens=len(tokens))
    finish_reason = "length" if full and not (ended or stopped) else "stop"
    completion = to_completion(text, len(row.prompt_ids), len(tokens), finish_reason, model.model)
    return ProviderResponse(completion=completion)
