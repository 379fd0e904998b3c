"""The ``openai`` adapter: any OpenAI-compatible endpoint through the official SDK.

Request and response mapping are pure functions; errors map onto the typed tree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import httpx2
import openai
from pydantic import ValidationError

from schemas import errors
from schemas.openai import ChatCompletion, ChatRequest, EmbeddingList, EmbeddingRequest
from schemas.settings import ModelConfig, ProviderConfig, Settings
from workers import tracing
from workers.providers.base import AdapterTraits, ProviderResponse
from workers.providers.embedding_output import finish_embeddings
from workers.providers.openai_stream import TextSink, relay, stream_params
from workers.ratelimit.tokens import estimate_prompt_tokens


def to_openai_params(request: ChatRequest, model: ModelConfig) -> dict[str, Any]:
    """The SDK keyword arguments for a request routed to ``model``."""
    params = request.model_dump(exclude_none=True, exclude={"model", "stream"})
    params["model"] = model.model
    return params


def from_openai_body(body: Any) -> ChatCompletion:
    """A validated completion from a raw response body, or InvalidOutput."""
    try:
        return ChatCompletion.model_validate(body)
    except ValidationError as exc:
        raise errors.InvalidOutput(
            f"The provider answered a malformed completion: {exc.error_count()} problems."
        ) from exc


def to_embedding_params(request: EmbeddingRequest, model: ModelConfig) -> dict[str, Any]:
    """The embeddings body for ``model``; floats are asked for so they can be checked."""
    params = request.model_dump(exclude_none=True, exclude={"model"})
    params.update(model=model.model, encoding_format="float")
    return params


def from_embeddings_body(body: Any, request: EmbeddingRequest, model: ModelConfig) -> EmbeddingList:
    """A checked embeddings list from a raw response body, or InvalidOutput."""
    try:
        result = EmbeddingList.model_validate(body)
    except ValidationError as exc:
        raise errors.InvalidOutput(
            f"The provider answered a malformed embeddings list: {exc.error_count()} problems."
        ) from exc
    return finish_embeddings(result, request, model)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after``, if the provider said."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def map_error(exc: openai.OpenAIError) -> errors.ProviderError:
    """The typed error for an SDK exception."""
    if isinstance(exc, openai.APITimeoutError):
        return errors.ProviderTimeout("The provider did not answer in time.")
    if isinstance(exc, openai.APIConnectionError):
        return errors.ProviderConnectionError(f"Could not reach the provider: {exc}.")
    if isinstance(exc, openai.APIStatusError):
        return _map_status_error(exc)
    return errors.InvalidOutput(f"The provider answered something unreadable: {exc}.")


def _map_status_error(exc: openai.APIStatusError) -> errors.ProviderError:
    headers = exc.response.headers
    return error_for_status(exc.status_code, _provider_message(exc), _provider_code(exc), headers)


def error_for_status(
    status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
) -> errors.ProviderError:
    """The typed error for a provider's HTTP error status (a live answer or a batch line's)."""
    headers = headers or {}
    retry_after = retry_after_seconds(headers)
    if status == 429:
        return errors.ProviderRateLimited(message, retry_after=retry_after, headers=dict(headers))
    if status in (401, 403):
        return errors.ProviderAuthenticationFailed(message)
    if status in (400, 404, 422):
        if code == "context_length_exceeded":
            return errors.ContextTooLong(message)
        return errors.ProviderBadRequest(message, provider_status=status)
    if status == 408:
        return errors.ProviderTimeout(message)
    return errors.ProviderUnavailable(message, retry_after=retry_after, provider_status=status)


def _answer_error(status: int, content: bytes, headers: Mapping[str, str]) -> errors.ProviderError:
    """The typed error for an error answer, read as the SDK reads one: OpenAI's
    ``{"error": {"message", "code"}}`` when the body has it, else the body's text."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict):
        message, code = str(error.get("message") or body), error.get("code")
    else:
        message, code = content.decode("utf-8", "replace") or "no body", None
    text = f"Provider answered {status}: {message}"[:500]
    return error_for_status(status, text, code if isinstance(code, str) else None, headers)


def _provider_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return error.get("code") if isinstance(error, dict) else None


def _provider_message(exc: openai.APIStatusError) -> str:
    return f"Provider answered {exc.status_code}: {exc.message}"[:500]


class OpenAICompatibleProvider:
    """Calls one OpenAI-compatible base URL; retries are Switchyard's, not the SDK's."""

    traits: ClassVar[AdapterTraits] = AdapterTraits(batch_api=True)

    def __init__(
        self, config: ProviderConfig, settings: Settings, http_client: httpx2.Client | None = None
    ) -> None:
        """``http_client`` replaces the SDK's own (tests answer calls at its transport)."""
        # The adapter holds the HTTP client it hands the SDK, with the SDK's defaults (pool
        # limits, redirects), so plain calls reach it without the SDK's private attributes.
        self._http = http_client or openai.DefaultHttpxClient(timeout=config.timeout_s)
        sdk = self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key.get_secret_value(),
            timeout=config.timeout_s,
            max_retries=0,
            http_client=self._http,
        )
        # A plain call goes straight to the SDK's HTTP client (see _post), so what it sends is
        # built once: the endpoint URLs, parsed by that client, and the headers an
        # OpenAI-compatible server reads. The SDK adds the key per request, not in its default
        # headers, so it is added here. Measured: 0.12 ms less CPU per call than building
        # both per call (docs/performance.md).
        self._headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": sdk.user_agent,
            **sdk.auth_headers,
        }
        self._urls = {
            path: self._http.build_request("POST", f"{sdk.base_url}{path}").url
            for path in ("chat/completions", "embeddings")
        }

    def estimate_prompt_tokens(self, request: ChatRequest | EmbeddingRequest) -> int:
        """A documented estimate: tiktoken's files cannot be fetched here (workers/ratelimit/tokens.py)."""
        return estimate_prompt_tokens(request)

    def complete(
        self, request: ChatRequest, model: ModelConfig, timeout_s: float
    ) -> ProviderResponse[ChatCompletion]:
        """One chat completion; raises only typed provider errors."""
        body, headers = self._post("chat/completions", to_openai_params(request, model), timeout_s)
        return ProviderResponse(completion=from_openai_body(body), headers=headers)

    def stream_complete(
        self, request: ChatRequest, model: ModelConfig, timeout_s: float, on_text: TextSink
    ) -> ProviderResponse[ChatCompletion]:
        """One chat completion streamed: each text delta goes to ``on_text`` as it arrives.

        ``timeout_s`` bounds each wait for the next chunk; the task's time limit bounds the whole.
        """
        params = stream_params(to_openai_params(request, model))
        try:
            # The call's traceparent, while tracing is on (None adds nothing).
            raw = self._client.chat.completions.with_raw_response.create(
                **params, timeout=timeout_s, extra_headers=tracing.outgoing_headers()
            )
            with raw.parse() as chunks:
                body = relay(chunks, on_text)
        except openai.OpenAIError as exc:
            raise map_error(exc) from exc
        except (httpx.TimeoutException, httpx2.TimeoutException) as exc:
            raise errors.ProviderTimeout("The provider's stream stalled.") from exc
        except (httpx.HTTPError, httpx2.HTTPError) as exc:  # the stream broke after it began
            raise errors.ProviderConnectionError(f"The provider's stream broke: {exc}.") from exc
        return ProviderResponse(completion=from_openai_body(body), headers=dict(raw.headers))

    def embed(
        self, request: EmbeddingRequest, model: ModelConfig, timeout_s: float
    ) -> ProviderResponse[EmbeddingList]:
        """Every input of the request in one embeddings call; raises only typed provider errors."""
        body, headers = self._post("embeddings", to_embedding_params(request, model), timeout_s)
        return ProviderResponse(completion=from_embeddings_body(body, request, model), headers=headers)

    def _post(self, path: str, body: dict[str, Any], timeout_s: float) -> tuple[Any, dict[str, str]]:
        # The call goes straight to the HTTP client the SDK shares, with the endpoint and the
        # key the SDK was given. The SDK's own request pipeline (option models, URL
        # parsing, a retry loop we switch off) cost 1.7 ms of CPU per call against 0.66 ms this
        # way (docs/performance.md); errors map as the SDK's typed errors did.
        traced = tracing.outgoing_headers()  # the provider.call span's traceparent, while tracing is on
        headers = self._headers if traced is None else {**self._headers, **traced}
        try:
            raw = self._http.post(self._urls[path], json=body, headers=headers, timeout=timeout_s)
        except (httpx.TimeoutException, httpx2.TimeoutException) as exc:
            raise errors.ProviderTimeout("The provider did not answer in time.") from exc
        except (httpx.HTTPError, httpx2.HTTPError) as exc:
            raise errors.ProviderConnectionError(f"Could not reach the provider: {exc}.") from exc
        if not raw.is_success:
            raise _answer_error(raw.status_code, raw.content, raw.headers)
        try:
            return raw.json(), dict(raw.headers)
        except ValueError as exc:  # a body that is not JSON at all
            raise errors.InvalidOutput("The provider answered a body that is not JSON.") from exc

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
