"""Parsing of OpenAI chat.completions and embeddings bodies into emulated model calls.

Plain dict checks, no pydantic: this is the hot path. Only what the emulator needs is checked;
other fields (temperature, tools, user, ...) are accepted and ignored.
"""

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from infra.emulator import content

DEFAULT_MAX_TOKENS = 16  # what a request without max_tokens costs against the TPM limit
MAX_DIMENSION = 4096


class BadRequest(Exception):
    """A request body the emulator answers with 400 invalid_request_error."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


async def read_json(request: Request) -> dict[str, Any]:
    """Read a request body that must be a JSON object."""
    try:
        body = json.loads(await request.body())
    except ValueError as error:
        raise BadRequest("We could not parse the JSON body of your request.") from error
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def require_model(body: dict[str, Any]) -> str:
    """Return the request's model name, which must be a non-empty string."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("You must provide a model parameter.", "model")
    return model


@dataclass(frozen=True)
class ChatCall:
    """A parsed chat.completions request."""

    model: str
    messages: list[Any]
    max_tokens: int | None
    prompt_tokens: int
    json_mode: bool
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage

    @property
    def cost(self) -> int:
        """Tokens the request spends against the TPM limit: prompt plus the reply budget."""
        return self.prompt_tokens + (self.max_tokens or DEFAULT_MAX_TOKENS)

    def reply(self) -> tuple[dict[str, Any], int]:
        """Build the chat.completion and the total tokens it used."""
        text = content.reply_text(self.messages)
        if self.json_mode:
            text = json.dumps({"answer": text})
        text, truncated = content.truncate_tokens(text, self.max_tokens)
        completion = content.count_tokens(text)
        finish = "length" if truncated else "stop"
        body = content.chat_completion(self.model, text, finish, (self.prompt_tokens, completion))
        return body, self.prompt_tokens + completion


def parse_chat(body: dict[str, Any]) -> ChatCall:
    """Check a chat.completions body and return the call it asks for."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", "messages")
    if not all(isinstance(m, dict) for m in messages):
        raise BadRequest("Each message must be an object with a role.", "messages")
    model = require_model(body)
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    if limit is not None and (type(limit) is not int or limit < 1):
        raise BadRequest("'max_tokens' must be a positive integer.", "max_tokens")
    stream = body.get("stream", False)
    if stream not in (True, False, None):
        raise BadRequest("'stream' must be a boolean.", "stream")
    options = body.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict)):
        raise BadRequest("'stream_options' is an object, allowed only with stream=true.", "stream_options")
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") == "json_object"
    include_usage = bool(options and options.get("include_usage"))
    prompt = content.prompt_tokens(messages)
    return ChatCall(model, messages, limit, prompt, json_mode, bool(stream), include_usage)


@dataclass(frozen=True)
class EmbeddingsCall:
    """A parsed embeddings request."""

    model: str
    texts: list[str]
    dimension: int
    encoding_format: str

    @property
    def tokens(self) -> int:
        """Tokens of all the inputs."""
        return sum(content.count_tokens(t) for t in self.texts)

    def reply(self) -> tuple[dict[str, Any], int]:
        """Build the embeddings list and the tokens it used."""
        body = content.embeddings_list(self.model, self.texts, self.dimension, self.encoding_format)
        return body, body["usage"]["total_tokens"]


def parse_embeddings(body: dict[str, Any]) -> EmbeddingsCall:
    """Check an embeddings body and return the call it asks for."""
    model = require_model(body)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("'input' must be a string or a non-empty array of strings.", "input")
    dimension = body.get("dimensions") or content.EMBEDDING_DIMENSION
    if type(dimension) is not int or not 0 < dimension <= MAX_DIMENSION:
        raise BadRequest(f"'dimensions' must be an integer in 1..{MAX_DIMENSION}.", "dimensions")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return EmbeddingsCall(model, texts, dimension, encoding)
