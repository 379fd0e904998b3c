"""Input checks of ``POST /v1/jobs`` that depend on configuration, each with its own code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from schemas import errors
from schemas.jobs import JobCreate
from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.settings import Settings, TierConfig
from workers.webhooks.ssrf import check_registered_url


def check_job(body: JobCreate, settings: Settings) -> None:
    """Raise the first limit the job breaks; say what to change."""
    _check_tier_and_model(body, settings)
    _check_kind(body, settings)
    if isinstance(body.request, EmbeddingRequest):
        _check_inputs(body.request, settings)
    else:
        _check_messages(body.request, settings)
        _check_max_tokens(body.request, settings)
    if body.callback_url is not None:
        check_callback_url(body.callback_url)
        check_registered_url(body.callback_url, settings.webhooks)  # the SSRF guard
    _check_metadata(body.metadata, settings)
    _check_storable(body)


def known_tier(settings: Settings, name: str) -> TierConfig:
    """The tier's config, or ``unknown_tier`` listing the known ones."""
    tier = settings.tiers.get(name)
    if tier is None:
        known = sorted(settings.tiers)
        if name in settings.auto_tiers:  # only routing (workers/routing_rules.py) resolves one
            raise errors.UnknownTier(
                f"{name!r} is an auto tier: jobs may name it, but it has no queue or cache of its "
                f"own; use one of its tiers here: {', '.join(settings.auto_tiers[name].tiers)}.",
                known_tiers=known,
            )
        raise errors.UnknownTier(
            f"Unknown tier {name!r}; known tiers: {', '.join(known)}.", known_tiers=known
        )
    return tier


def _check_tier_and_model(body: JobCreate, settings: Settings) -> None:
    tier = known_tier(settings, body.tier)
    model = body.request.model
    if model is not None and model not in tier.models:
        raise errors.UnknownModel(
            f"Model {model!r} is not in tier {body.tier!r}; use one of {tier.models} or omit "
            "`model` to let the tier route.",
            known_models=tier.models,
        )


def _check_kind(body: JobCreate, settings: Settings) -> None:
    served = settings.tier_kind(body.tier)
    if body.kind != served:
        raise errors.WrongJobKind(
            f"Tier {body.tier!r} serves {served} jobs, not {body.kind} jobs; pick a tier of "
            f"kind {body.kind!r} or set `kind` to {served!r}.",
            tier_kind=served,
        )
    if body.kind == "embedding" and body.cache == "semantic":
        raise errors.CacheModeUnsupported(
            "Embedding jobs cannot use the semantic cache; use `exact` or `off`."
        )


def _check_inputs(request: EmbeddingRequest, settings: Settings) -> None:
    inputs = request.inputs()
    if len(inputs) > settings.max_embedding_inputs:
        raise errors.TooManyInputs(
            f"{len(inputs)} inputs; at most {settings.max_embedding_inputs} are allowed in one job.",
            max_inputs=settings.max_embedding_inputs,
        )
    total = sum(len(text) for text in inputs)
    if total > settings.max_content_chars:
        raise errors.ContentTooLong(
            f"The inputs hold {total} characters; at most {settings.max_content_chars} are allowed.",
            max_content_chars=settings.max_content_chars,
        )


def _check_messages(request: ChatRequest, settings: Settings) -> None:
    messages = request.messages
    if len(messages) > settings.max_messages:
        raise errors.TooManyMessages(
            f"{len(messages)} messages; at most {settings.max_messages} are allowed.",
            max_messages=settings.max_messages,
        )
    total = sum(len(message.text()) for message in messages)
    if total > settings.max_content_chars:
        raise errors.ContentTooLong(
            f"The messages hold {total} characters; at most {settings.max_content_chars} are allowed.",
            max_content_chars=settings.max_content_chars,
        )


def _check_max_tokens(request: ChatRequest, settings: Settings) -> None:
    requested = request.requested_max_tokens()
    if requested is not None and not 1 <= requested <= settings.max_tokens_limit:
        raise errors.MaxTokensOutOfRange(
            f"max_tokens must be between 1 and {settings.max_tokens_limit}; got {requested}.",
            minimum=1,
            maximum=settings.max_tokens_limit,
        )


def check_callback_url(url: str) -> None:
    """A well-formed absolute http(s) URL with a host and no credentials."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = None
    if (
        parts is None
        or not port_ok
        or len(url) > 2048
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or any(ch.isspace() for ch in url)
    ):
        raise errors.InvalidCallbackUrl(
            f"callback_url {url[:200]!r} must be an absolute http:// or https:// URL with a "
            "host, no credentials and at most 2048 characters."
        )


def _check_metadata(metadata: dict[str, Any], settings: Settings) -> None:
    size = len(json.dumps(metadata))
    if size > settings.max_metadata_bytes:
        raise errors.MetadataTooLarge(
            f"metadata is {size} bytes as JSON; at most {settings.max_metadata_bytes} are allowed.",
            max_metadata_bytes=settings.max_metadata_bytes,
        )


def _check_storable(body: JobCreate) -> None:
    # Python's JSON parser lets through what the database (PostgreSQL JSONB above all) and
    # providers refuse: NaN/Infinity, lone UTF-16 surrogates, NUL characters.
    try:
        text = json.dumps(body.model_dump(), allow_nan=False, ensure_ascii=False, default=str)
        text.encode("utf-8")
    except ValueError as exc:  # UnicodeEncodeError is a ValueError
        raise errors.InvalidRequest(
            "The body must hold only finite numbers and valid Unicode text (no lone surrogates)."
        ) from exc
    if "\\u0000" in text:
        raise errors.InvalidRequest("Text may not contain NUL characters (\\u0000).")
