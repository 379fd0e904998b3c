"""The ``local`` provider: SmolLM2-135M-Instruct generating in the worker process, no network.

The model loads on the first call, not at import: every worker imports the adapter registry,
most serve other tiers. Each call's prompt is built and checked in the caller's thread, then
handed to the model's :class:`~workers.providers.local_engine.GenerationEngine`, which decodes
up to the provider's ``max_batch_size`` calls together, continuously batched: a call joins the
running batch as soon as a slot is free and leaves it at its own end token, token budget or
stop string (docs/worker-batching.md). Embedding calls meet in a :class:`BatchCollector` per
model and run on MiniLM (:mod:`workers.providers.local_embeddings`).
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar

from schemas.errors import ContextTooLong, ProviderError, ProviderTimeout
from schemas.openai import (
    ChatCompletion,
    ChatRequest,
    Choice,
    ChoiceMessage,
    CompletionUsage,
    EmbeddingList,
    EmbeddingRequest,
)
from schemas.settings import ModelConfig, ProviderConfig, Settings
from workers.providers.base import AdapterTraits, ProviderResponse
from workers.providers.collector import BatchCollector
from workers.providers.local_embeddings import LocalEmbeddings
from workers.providers.local_engine import GeneratedRow, GenerationEngine
from workers.providers.local_weights import LoadedModel, PromptRow, Sampling, end_token_ids, load_model

DEFAULT_MAX_TOKENS = 64
# A caller waits this long past its timeout for the batch's own answer (finished or timed out).
ANSWER_GRACE_S = 1.0
Chat = ProviderResponse[ChatCompletion]
Embedded = ProviderResponse[EmbeddingList]
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

    traits: ClassVar[AdapterTraits] = AdapterTraits(runs_in_worker=True)

    def __init__(self, config: ProviderConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._engines: dict[str, GenerationEngine] = {}
        self._embed_collectors: dict[str, BatchCollector[EmbeddingRequest, Embedded]] = {}
        self._collectors_lock = threading.Lock()
        self.embeddings = LocalEmbeddings()

    def load(self) -> LoadedModel:
        """The loaded model, loading (and on first use converting) it now if needed."""
        with self._lock:
            return self._load_locked()

    def estimate_prompt_tokens(self, request: ChatRequest | EmbeddingRequest) -> int:
        """Exact prompt tokens, from the model's own tokenizer (and chat template)."""
        if isinstance(request, EmbeddingRequest):
            return sum(self.embeddings.count_tokens(request.inputs()))
        tokenizer = self.load().tokenizer
        return len(tokenizer.encode(build_prompt(tokenizer, request), add_special_tokens=False))

    def complete(self, request: ChatRequest, model: ModelConfig, timeout_s: float) -> Chat:
        """Run one chat completion, decoding alongside the other calls the model is running."""
        tokenizer = self.load().tokenizer
        row = self._prepare(tokenizer, request, model)
        generated = self._engine(model).generate(row, _sampling(request), timeout_s, ANSWER_GRACE_S)
        return _answered(_answer(tokenizer, row, generated, model))

    def stream_complete(
        self, request: ChatRequest, model: ModelConfig, timeout_s: float, on_text: Callable[[str], None]
    ) -> Chat:
        """The batched completion, its text handed over as one piece once generated.

        Token-by-token output would take the call out of the batch it shares with other jobs,
        which costs every one of them more than a streaming client gains (docs/streaming.md).
        """
        response = self.complete(request, model, timeout_s)
        text = response.completion.choices[0].message.content
        if text:
            on_text(text)
        return response

    def embed(self, request: EmbeddingRequest, model: ModelConfig, timeout_s: float) -> Embedded:
        """Embed the request's inputs, in a batch with the calls other threads make meanwhile."""
        return self._embed_collector(model).submit(request, timeout_s)

    def prefix_cache_tokens(self) -> dict[str, tuple[int, int]]:
        """Per chat engine, prompt tokens answered from its prefix cache and tokens run."""
        with self._collectors_lock:
            return {e.name: (e.prefixes.hits, e.prefixes.misses) for e in self._engines.values()}

    def batch_sizes(self) -> dict[str, dict[int, int]]:
        """Per engine, how many prefills of each size it ran; per embedding collector, its batches."""
        with self._collectors_lock:
            sizes = {e.name: dict(e.batch_sizes) for e in self._engines.values()}
            sizes.update({c.name: dict(c.batch_sizes) for c in self._embed_collectors.values()})
            return sizes

    def complete_batch(
        self, requests: list[ChatRequest], model: ModelConfig, timeout_s: float
    ) -> list[Chat | ProviderError]:
        """Run many completions at once; each result is a response or that request's error."""
        tokenizer = self.load().tokenizer
        engine = self._engine(model)
        queued: list[tuple[PromptRow, Future[GeneratedRow]] | ProviderError] = []
        for request in requests:
            try:
                row = self._prepare(tokenizer, request, model)
            except ProviderError as error:
                queued.append(error)
                continue
            queued.append((row, engine.submit(row, _sampling(request), timeout_s)))
        return [
            item if isinstance(item, ProviderError) else _answer(tokenizer, *_waited(item, timeout_s), model)
            for item in queued
        ]

    def _engine(self, model: ModelConfig) -> GenerationEngine:
        key = model.model_dump_json()
        with self._collectors_lock:
            if key not in self._engines:
                self._engines[key] = GenerationEngine(
                    self.load,
                    self.config.max_batch_size,
                    self.config.max_batch_wait_ms,
                    name=f"chat:{model.model}",
                    prefix_cache_blocks=self.config.prefix_cache_blocks,
                )
            return self._engines[key]

    def _embed_collector(self, model: ModelConfig) -> BatchCollector[EmbeddingRequest, Embedded]:
        key = model.model_dump_json()
        with self._collectors_lock:
            if key not in self._embed_collectors:
                self._embed_collectors[key] = BatchCollector(
                    lambda requests: self.embeddings.embed_batch(requests, model),
                    self.config.max_batch_size,
                    self.config.max_batch_wait_ms,
                    name=f"embedding:{model.model}",
                )
            return self._embed_collectors[key]

    def close(self) -> None:
        """Drop the model so its memory can be returned."""
        with self._lock:
            self._loaded = None
        gc.collect()

    def _load_locked(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self.settings, self.config.prefill_dtype)
        return self._loaded

    def _prepare(self, tokenizer: Any, request: ChatRequest, model: ModelConfig) -> PromptRow:
        prompt_ids = tokenizer.encode(build_prompt(tokenizer, request), add_special_tokens=False)
        budget = generation_budget(len(prompt_ids), request, model)
        return PromptRow(list(prompt_ids), budget, stop_strings(request))


def _sampling(request: ChatRequest) -> Sampling:
    return Sampling(request.temperature, request.top_p, request.seed)


def _answer(
    tokenizer: Any, row: PromptRow, generated: GeneratedRow, model: ModelConfig
) -> Chat | ProviderError:
    tokens, ended = cut_row(generated.tokens, row.max_new_tokens, end_token_ids(tokenizer))
    text, stopped = trim_at_stop(tokenizer.decode(tokens, skip_special_tokens=True), row.stop)
    full = len(tokens) >= row.max_new_tokens
    if generated.timed_out and not (ended or stopped or full):
        return ProviderTimeout("local generation ran out of time", completion_tokens=len(tokens))
    finish_reason = "length" if full and not (ended or stopped) else "stop"
    completion = to_completion(text, len(row.prompt_ids), len(tokens), finish_reason, model.model)
    return ProviderResponse(completion=completion, batch_size=generated.batch_size)


def _waited(
    queued: tuple[PromptRow, Future[GeneratedRow]], timeout_s: float
) -> tuple[PromptRow, GeneratedRow]:
    row, answer = queued
    return row, answer.result(timeout=timeout_s + ANSWER_GRACE_S)


def _answered(result: Chat | ProviderError) -> Chat:
    if isinstance(result, ProviderError):
        raise result
    return result
