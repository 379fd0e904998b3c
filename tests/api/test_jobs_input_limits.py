"""Input checks of ``POST /v1/jobs``: sizes, counts, tiers and models, callback URLs, malformed
bodies, and what PostgreSQL cannot store; each answers its own code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jobs_api_support
import pytest
from api_harness import assert_error
from jobs_api_support import MESSAGES, Api

api, auth, make_api = (
    jobs_api_support.api,
    jobs_api_support.auth,
    jobs_api_support.make_api,
)  # the shared fixtures, by name


def test_body_over_max_body_bytes_answers_413(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=2_000)
    auth = api.tenant()
    small = api.body(request={"messages": [{"role": "user", "content": "x" * 1_000}]})
    large = api.body(request={"messages": [{"role": "user", "content": "x" * 3_000}]})

    assert api.client.post("/v1/jobs", json=small, headers=auth).status_code == 202
    error = assert_error(api.client.post("/v1/jobs", json=large, headers=auth), 413, "payload_too_large")
    assert error["max_bytes"] == 2_000


def test_streamed_body_over_max_body_bytes_answers_413(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=2_000)
    auth = api.tenant()
    payload = json.dumps(api.body(request={"messages": [{"role": "user", "content": "x" * 3_000}]})).encode()
    chunks = [payload[i : i + 500] for i in range(0, len(payload), 500)]

    response = api.client.post(
        "/v1/jobs", content=iter(chunks), headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 413, "payload_too_large")


def test_too_many_messages_answers_400(api: Api, auth: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "hi"}] * (api.settings.max_messages + 1)

    error = assert_error(api.submit(auth, request={"messages": messages}), 400, "too_many_messages")

    assert error["max_messages"] == api.settings.max_messages


def test_content_too_long_answers_400(api: Api, auth: dict[str, str]) -> None:
    limit = api.settings.max_content_chars
    at_limit = [{"role": "system", "content": "s" * 10}, {"role": "user", "content": "u" * (limit - 10)}]
    over = [{"role": "system", "content": "s" * 10}, {"role": "user", "content": "u" * (limit - 9)}]

    assert api.submit(auth, request={"messages": at_limit}).status_code == 202
    assert_error(api.submit(auth, request={"messages": over}), 400, "content_too_long")


@pytest.mark.parametrize(
    "field_value",
    [("max_tokens", 0), ("max_tokens", -5), ("max_tokens", 32_769), ("max_completion_tokens", 32_769)],
)
def test_max_tokens_out_of_range_answers_400(
    api: Api, auth: dict[str, str], field_value: tuple[str, int]
) -> None:
    field, value = field_value
    assert api.settings.max_tokens_limit == 32_768

    assert_error(api.submit(auth, request={field: value}), 400, "max_tokens_out_of_range")


def test_max_tokens_at_limit_is_accepted(api: Api, auth: dict[str, str]) -> None:
    assert api.submit(auth, request={"max_tokens": api.settings.max_tokens_limit}).status_code == 202
    assert api.submit(auth, request={"max_tokens": 1}).status_code == 202


def test_unknown_tier_answers_400_listing_known_tiers(api: Api, auth: dict[str, str]) -> None:
    error = assert_error(api.submit(auth, tier="no-such-tier"), 400, "unknown_tier")

    for tier in api.settings.tiers:
        assert tier in error["message"]
    assert error["known_tiers"] == sorted(api.settings.tiers)


@pytest.mark.parametrize("model", ["gpt-unknown", "emu-slow"], ids=["unconfigured", "other-tier"])
def test_unknown_model_answers_400(api: Api, auth: dict[str, str], model: str) -> None:
    error = assert_error(api.submit(auth, request={"model": model}), 400, "unknown_model")

    assert error["known_models"] == ["emu-a", "emu-b"]


def test_model_of_the_tier_is_accepted(api: Api, auth: dict[str, str]) -> None:
    assert api.submit(auth, request={"model": "emu-b"}).status_code == 202


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "https:///no-host",
        "https://exa mple.com/hook",
        "https://example.com/hook with space",
        "https://user:secret@example.com/hook",
        "https://user@example.com/hook",
        "example.com/hook",
        "https://example.com:0/hook",
        "https://example.com:99999/hook",
        "https://" + "a" * 2050 + ".com/",
    ],
)
def test_malformed_callback_url_answers_400(api: Api, auth: dict[str, str], url: str) -> None:
    assert_error(api.submit(auth, callback_url=url), 400, "invalid_callback_url")


def test_wellformed_callback_url_is_accepted(api: Api, auth: dict[str, str]) -> None:
    response = api.submit(auth, callback_url="https://hooks.example.com/switchyard?x=1")

    assert response.status_code == 202
    assert response.json()["callback_url"] == "https://hooks.example.com/switchyard?x=1"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"tier": "small", "request": ', (1, 30, 29)),
        (b'{\n  "tier": "small",\n  "request": }', (3, 14, 34)),
        (b'{"tier": "small",}', (1, 18, 17)),
    ],
    ids=["cut-short", "missing-value", "trailing-comma"],
)
def test_malformed_json_says_where_and_what(
    api: Api, auth: dict[str, str], body: bytes, where: tuple[int, int, int]
) -> None:
    response = api.client.post("/v1/jobs", content=body, headers={**auth, "Content-Type": "application/json"})

    error = assert_error(response, 422, "validation_error")
    line, column, position = where
    assert (error["line"], error["column"], error["position"]) == where
    assert f"at line {line}, column {column} (character {position})" in error["message"]
    assert json_parser_says(body) in error["message"]  # what was expected, e.g. "Expecting value"


def json_parser_says(body: bytes) -> str:
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return exc.msg
    raise AssertionError("the body parses")


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": None},
        {"role": "user"},
        {"role": "system", "content": None},
        {"role": "tool", "content": None, "tool_call_id": "call_1"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": []},
    ],
    ids=["user-null", "user-missing", "system-null", "tool-null", "assistant-null-no-calls", "empty-parts"],
)
def test_a_message_without_content_is_refused_as_openai_does(
    api: Api, auth: dict[str, str], message: dict[str, Any]
) -> None:
    messages = [*MESSAGES, message] if message["role"] != "user" else [message]

    error = assert_error(api.submit(auth, request={"messages": messages}), 422, "validation_error")

    index = len(messages) - 1
    assert error["message"].startswith(f"Invalid request: request.messages.{index}:")
    assert "content" in error["message"]


def test_an_assistant_tool_call_may_have_null_content(api: Api, auth: dict[str, str]) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    messages = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
    ]

    assert api.submit(auth, request={"messages": messages}).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        {"colour": "red"},
        {"request": {"messages": MESSAGES, "not_an_openai_field": 1}},
        {"request": {"messages": []}},
        {"request": {"messages": MESSAGES, "stream": "yes"}},
        {"priority": "urgent"},
    ],
    ids=["unknown-field", "unknown-request-field", "no-messages", "stream-not-bool", "bad-priority"],
)
def test_invalid_body_answers_422(api: Api, auth: dict[str, str], body: dict[str, Any]) -> None:
    full = {"tier": api.tier, "request": {"messages": MESSAGES}, **body}

    error = assert_error(api.client.post("/v1/jobs", json=full, headers=auth), 422, "validation_error")

    assert error["errors"]


def test_nul_characters_are_refused(api: Api, auth: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "before\u0000after"}]

    assert_error(api.submit(auth, request={"messages": messages}), 400, "invalid_request")
    assert_error(api.submit(auth, callback_url="https://example.com/\u0000"), 400, "invalid_request")


@pytest.mark.parametrize(
    "fragment",
    [
        b'"metadata": {"x": Infinity}',
        b'"metadata": {"x": NaN}',
        b'"metadata": {"x": 1e400}',
        b'"request": {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": -Infinity}}',
        b'"request": {"messages": [{"role": "user", "content": "a\\ud800b"}]}',
        b'"metadata": {"k\\udfff": 1}',
        b'"callback_url": "https://example.com/\\ud800"',
    ],
    ids=["infinity", "nan", "overflow", "logit-bias", "surrogate-content", "surrogate-key", "surrogate-url"],
)
def test_body_postgresql_cannot_store_answers_400(api: Api, auth: dict[str, str], fragment: bytes) -> None:
    # Python's JSON parser accepts these; JSONB and UTF-8 do not, so they must not reach the database.
    body = (
        b'{"tier": "'
        + api.tier.encode()
        + b'", "request": {"messages": [{"role": "user", "content": "hi"}]}, '
    )
    response = api.client.post(
        "/v1/jobs", content=body + fragment + b"}", headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("path", "params"),
    [("/v1/jobs/job_%00", {}), ("/v1/jobs", {"tier": "a\x00b"})],
    ids=["job-id", "tier"],
)
def test_nul_in_path_or_query_answers_422(
    api: Api, auth: dict[str, str], path: str, params: dict[str, str]
) -> None:
    assert_error(api.client.get(path, params=params, headers=auth), 422, "validation_error")
    # A NUL in a cursor is a bad cursor like any other (test_jobs_submit_and_list.py).
