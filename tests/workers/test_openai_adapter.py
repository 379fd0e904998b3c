"""The OpenAI-compatible adapter: pure mapping, and HTTP answers faked at the transport.

The SDK runs on ``httpx2`` by default and still accepts a legacy ``httpx`` client; the HTTP
tests run on both, so either transport maps onto the same typed errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest
from tests_support import completion_body, make_test_settings

from schemas import errors
from schemas.openai import ChatCompletion, ChatRequest
from schemas.settings import ModelConfig
from workers.providers.openai_compat import (
    OpenAICompatibleProvider,
    from_openai_body,
    to_openai_params,
)

MODEL = ModelConfig.model_validate({"provider": "emulator", "model": "provider-model-7b"})
GOOD_BODY = completion_body(
    "provider-model-7b", "Hi!", prompt_tokens=9, completion_tokens=3, created=1_700_000_000
)


def chat_request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": "Hello"}], **fields})


@dataclass
class FakeProvider:
    """Builds adapters whose HTTP goes to a handler on one HTTP library's MockTransport."""

    http: ModuleType
    tmp_path: Path

    def provider(self, handler: Any) -> OpenAICompatibleProvider:
        settings = make_test_settings(self.tmp_path, "redis://127.0.0.1:6379/9")
        http_client: Any = self.http.Client(transport=self.http.MockTransport(handler))
        return OpenAICompatibleProvider(settings.providers["emulator"], settings, http_client=http_client)

    def answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return lambda request: self.http.Response(status, json=body, headers=headers)

    def error(self, handler: Any) -> errors.ProviderError:
        """The typed error one call through ``handler`` raises."""
        provider = self.provider(handler)
        with pytest.raises(errors.ProviderError) as caught:
            provider.complete(chat_request(), MODEL, timeout_s=5)
        provider.close()
        return caught.value


@pytest.fixture(params=[httpx2, httpx], ids=["httpx2", "httpx"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> FakeProvider:
    return FakeProvider(http=request.param, tmp_path=tmp_path)


# Pure mapping


def test_params_name_the_providers_model_and_drop_unset_fields() -> None:
    request = chat_request(model="emu-a", temperature=0.2, max_tokens=17, stream=False)

    params = to_openai_params(request, MODEL)

    assert params == {
        "model": "provider-model-7b",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.2,
        "max_tokens": 17,
    }


def test_params_keep_every_set_sampling_field() -> None:
    request = chat_request(top_p=0.5, seed=3, stop=["\n"], response_format={"type": "json_object"})

    params = to_openai_params(request, MODEL)

    assert params["top_p"] == 0.5
    assert params["seed"] == 3
    assert params["stop"] == ["\n"]
    assert params["response_format"] == {"type": "json_object"}
    assert None not in params.values()


def test_good_body_validates_as_completion() -> None:
    completion = from_openai_body(GOOD_BODY)

    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "Hi!"
    assert completion.usage.total_tokens == 12


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "not an object",
        None,
        {**GOOD_BODY, "choices": []},
        {key: value for key, value in GOOD_BODY.items() if key != "usage"},
        {**GOOD_BODY, "usage": {"prompt_tokens": -1, "completion_tokens": 3, "total_tokens": 2}},
        {**GOOD_BODY, "choices": [{"index": 0, "message": {"role": "user", "content": "echo"}}]},
        {**GOOD_BODY, "object": "text_completion"},
    ],
    ids=[
        "empty",
        "list",
        "string",
        "null",
        "no-choices",
        "no-usage",
        "negative-usage",
        "wrong-role",
        "wrong-object",
    ],
)
def test_malformed_body_raises_invalid_output(body: Any) -> None:
    with pytest.raises(errors.InvalidOutput) as caught:
        from_openai_body(body)
    assert caught.value.retryable is True


# HTTP answers through a MockTransport


def test_good_answer_gives_completion_and_headers(fake: FakeProvider) -> None:
    seen: list[Any] = []

    def handler(request: Any) -> Any:
        seen.append(request)
        return fake.http.Response(200, json=GOOD_BODY, headers={"x-ratelimit-remaining-requests": "41"})

    provider = fake.provider(handler)
    response = provider.complete(chat_request(model="emu-a", max_tokens=5), MODEL, timeout_s=5)
    provider.close()

    assert response.completion == ChatCompletion.model_validate(GOOD_BODY)
    assert response.headers["x-ratelimit-remaining-requests"] == "41"
    assert len(seen) == 1
    assert str(seen[0].url) == "http://127.0.0.1:8090/v1/chat/completions"  # the provider's base_url
    # The provider's key goes with every call: the SDK adds it per request, not in its defaults.
    assert seen[0].headers["authorization"] == "Bearer emulator-key"
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].headers["user-agent"].startswith("OpenAI/Python")
    sent = json.loads(seen[0].content)
    assert sent["model"] == "provider-model-7b"
    assert sent["max_tokens"] == 5
    assert "temperature" not in sent


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None)],
    ids=["retry-after", "retry-after-ms", "none"],
)
def test_429_maps_to_rate_limited_with_retry_after(
    fake: FakeProvider, headers: dict[str, str], seconds: float | None
) -> None:
    error = fake.error(fake.answer(429, {"error": {"message": "slow down"}}, headers))

    assert isinstance(error, errors.ProviderRateLimited)
    assert error.retryable is True
    assert error.retry_after == seconds


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_map_to_retryable_unavailable(fake: FakeProvider, status: int) -> None:
    error = fake.error(fake.answer(status, {"error": {"message": "oops"}}))

    assert isinstance(error, errors.ProviderUnavailable)
    assert error.retryable is True
    assert error.details["provider_status"] == status


def test_503_with_retry_after_keeps_the_hint(fake: FakeProvider) -> None:
    error = fake.error(fake.answer(503, {"error": {"message": "busy"}}, {"retry-after": "3"}))

    assert isinstance(error, errors.ProviderUnavailable)
    assert error.retry_after == 3.0


def test_400_maps_to_non_retryable_bad_request(fake: FakeProvider) -> None:
    error = fake.error(fake.answer(400, {"error": {"message": "bad", "code": "invalid_value"}}))

    assert type(error) is errors.ProviderBadRequest
    assert error.retryable is False


def test_400_context_length_exceeded_maps_to_context_too_long(fake: FakeProvider) -> None:
    body = {"error": {"message": "too long", "code": "context_length_exceeded"}}

    error = fake.error(fake.answer(400, body))

    assert isinstance(error, errors.ContextTooLong)
    assert error.code == "context_length_exceeded"
    assert error.retryable is False


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_map_to_non_retryable_authentication_failed(fake: FakeProvider, status: int) -> None:
    error = fake.error(fake.answer(status, {"error": {"message": "bad key"}}))

    assert isinstance(error, errors.ProviderAuthenticationFailed)
    assert error.retryable is False


def test_timeout_maps_to_retryable_provider_timeout(fake: FakeProvider) -> None:
    def handler(request: Any) -> Any:
        raise fake.http.ReadTimeout("no answer", request=request)

    error = fake.error(handler)

    assert isinstance(error, errors.ProviderTimeout)
    assert error.retryable is True


def test_connection_error_maps_to_retryable_connection_error(fake: FakeProvider) -> None:
    def handler(request: Any) -> Any:
        raise fake.http.ConnectError("connection refused", request=request)

    error = fake.error(handler)

    assert isinstance(error, errors.ProviderConnectionError)
    assert error.retryable is True


def test_non_json_answer_maps_to_invalid_output(fake: FakeProvider) -> None:
    error = fake.error(
        lambda request: fake.http.Response(
            200, content=b"<html>gateway</html>", headers={"content-type": "text/html"}
        )
    )

    assert isinstance(error, errors.InvalidOutput)
    assert error.retryable is True


def test_non_json_answer_claiming_json_maps_to_invalid_output(fake: FakeProvider) -> None:
    error = fake.error(
        lambda request: fake.http.Response(
            200, content=b"{not json", headers={"content-type": "application/json"}
        )
    )

    assert isinstance(error, errors.InvalidOutput)


def test_malformed_completion_maps_to_invalid_output(fake: FakeProvider) -> None:
    error = fake.error(fake.answer(200, {"id": "chatcmpl-1", "choices": "nope"}))

    assert isinstance(error, errors.InvalidOutput)
    assert error.retryable is True
