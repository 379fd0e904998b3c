"""Which requests share a semantic namespace, and which cached answers fit a request's limit."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.openai import ChatRequest
from workers.cache.namespaces import namespace, serves


def chat(
    text: str = "How do I reset my password?", system: str = "Be brief.", **params: Any
) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": text}], **params}


def same_namespace(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return namespace("ten_a", "small", a) == namespace("ten_a", "small", b)


@pytest.mark.parametrize(
    "other",
    [
        chat(user="end-user-42"),
        chat(stream=True),
        chat(max_tokens=300),
        chat(max_completion_tokens=50),
        chat(system="Be   brief.\n"),
        chat(text="What's the way to reset my password?"),
    ],
    ids=["user", "stream", "max_tokens", "max_completion_tokens", "system-whitespace", "question"],
)
def test_requests_differing_in_what_cannot_change_the_answer_meet(other: dict[str, Any]) -> None:
    assert same_namespace(chat(), other)


def test_greedy_decoding_ignores_seed_and_top_p_and_default_values_are_dropped() -> None:
    assert same_namespace(chat(temperature=0), chat(temperature=0, seed=7, top_p=0.5))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    assert same_namespace(chat(tools=tools), chat(tools=tools, tool_choice="auto"))
    assert same_namespace(chat(), chat(response_format={"type": "text"}))


@pytest.mark.parametrize(
    "other",
    [
        chat(system="Answer in French."),
        chat(temperature=0.7),
        chat(temperature=0.7, seed=7),
        chat(stop=["\n"]),
        chat(response_format={"type": "json_object"}),
        chat(tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}]),
        chat(tool_choice="none"),
        chat(logit_bias={"50256": -100}),
    ],
    ids=["system", "temperature", "sampling-seed", "stop", "json", "tools", "tool_choice", "logit_bias"],
)
def test_what_changes_the_answer_keeps_requests_apart(other: dict[str, Any]) -> None:
    assert not same_namespace(chat(), other)


def test_sampling_seed_matters_when_sampling() -> None:
    assert not same_namespace(chat(temperature=0.7, seed=1), chat(temperature=0.7, seed=2))


def answer(completion_tokens: int | None, finish_reason: str = "stop") -> dict[str, Any]:
    usage = None if completion_tokens is None else {"completion_tokens": completion_tokens}
    return {"choices": [{"finish_reason": finish_reason}], "usage": usage}


@pytest.mark.parametrize(
    ("cached", "request_", "fits"),
    [
        (answer(200), chat(), True),
        (answer(200), chat(max_tokens=500), True),
        (answer(200), chat(max_tokens=200), True),
        (answer(200), chat(max_tokens=100), False),
        (answer(200), chat(max_completion_tokens=100, max_tokens=500), False),
        (answer(100, "length"), chat(max_tokens=100), True),
        (answer(100, "length"), chat(max_tokens=500), False),
        (answer(100, "length"), chat(), False),
        (answer(None), chat(), True),
        (answer(None), chat(max_tokens=500), False),
    ],
    ids=[
        "no-limit",
        "under-limit",
        "at-limit",
        "over-limit",
        "max_completion_tokens-wins",
        "cut-same-limit",
        "cut-higher-limit",
        "cut-no-limit",
        "unknown-length-no-limit",
        "unknown-length-limit",
    ],
)
def test_a_cached_answer_serves_only_requests_whose_length_limit_it_fits(
    cached: dict[str, Any], request_: dict[str, Any], fits: bool
) -> None:
    assert serves(cached, ChatRequest.model_validate(request_).requested_max_tokens()) is fits
