"""OpenAI-compatible shapes (chat.completions, embeddings): a job's request and the result it stores."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

# Where OpenAI lets a message go without content: an assistant turn that calls tools.
CALLS = ("tool_calls", "function_call")


class ChatMessage(BaseModel):
    """One message of a conversation; content is text or a non-empty list of content parts.

    As in OpenAI's API, content may be null or left out only in an assistant message that
    carries ``tool_calls`` or ``function_call``; anywhere else the model would get no prompt.
    """

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _content_unless_calling(self) -> ChatMessage:
        if self.content == []:
            raise ValueError("content is an empty list; give at least one content part")
        if self.content is None and not (self.role == "assistant" and self._calls()):
            raise ValueError(
                f"content is missing or null in a message of role {self.role!r}; give text or content "
                "parts (only an assistant message with tool_calls or function_call may leave it null)"
            )
        return self

    def _calls(self) -> bool:
        extra = self.model_extra or {}
        return any(extra.get(name) for name in CALLS)

    def text(self) -> str:
        """The message's text, with content parts joined."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(str(part.get("text", "")) for part in self.content)


class ChatRequest(BaseModel):
    """A chat.completions request body; ``model`` is optional because the tier routes."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=128)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: Literal[1] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    user: str | None = Field(None, max_length=256)
    stream: StrictBool | None = Field(
        None, description="true: relay the answer's text as it is generated (GET /v1/jobs/{id}/stream)."
    )

    def requested_max_tokens(self) -> int | None:
        """``max_completion_tokens`` if set, else ``max_tokens``."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def with_default_max_tokens(self, default: int) -> ChatRequest:
        """The request as it is sent: ``max_tokens`` set to ``default`` (the tier's) if it sets no limit."""
        if self.requested_max_tokens() is not None:
            return self
        return self.model_copy(update={"max_tokens": default})


class CompletionUsage(BaseModel):
    """Token counts a provider reports for one call."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class ChoiceMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["assistant"]
    content: str | None = None


class Choice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    message: ChoiceMessage
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    """A chat.completion object; the provider boundary validates every answer against it."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice] = Field(min_length=1)
    usage: CompletionUsage


class EmbeddingRequest(BaseModel):
    """An embeddings request body; ``model`` is optional because the tier routes."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=128)
    input: str | list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="One text or a list of texts, none empty."
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, gt=0, le=8192)
    user: str | None = Field(None, max_length=256)

    def inputs(self) -> list[str]:
        """The texts to embed, as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)

    def requested_max_tokens(self) -> None:
        """Embeddings generate no tokens, so nothing beyond the prompt is reserved."""
        return None


class EmbeddingUsage(BaseModel):
    """Token counts of an embeddings call; embeddings have no completion tokens."""

    prompt_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)

    @property
    def completion_tokens(self) -> int:
        """Always 0, so usage and cost code treat both kinds of call alike."""
        return 0


class Embedding(BaseModel):
    """One input's vector: a list of floats, or base64 of little-endian float32."""

    object: Literal["embedding"] = "embedding"
    index: int = Field(ge=0)
    embedding: list[float] | str


class EmbeddingList(BaseModel):
    """The embeddings list object: one vector per input, in input order."""

    model_config = ConfigDict(extra="allow")

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
