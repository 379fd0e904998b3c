"""Which cached questions a request may be matched with, and on what text.

**Namespace.** An entry is only ever compared with entries of the same namespace: the
tenant, the tier, and a hash of the system prompt (whitespace runs as one space) and of the
parameters that change the answer (:func:`shaping_parameters`). So a hit never crosses a
tenant, and never serves an answer written for another system prompt, temperature, stop
sequence, response format or tool set; requests that differ only in a parameter that cannot
change the answer (``user``, ``stream``, a ``seed`` at temperature 0, ...) meet. A length
limit is checked per entry instead (:func:`serves`): a complete 200-token answer serves a
request capped at 500 tokens as well as one with no cap.

**Text.** The text compared is the conversation without its system prompt: the content of
a single message, or one ``role: content`` line per message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from workers.cache.exact import NOT_OUTPUT_SHAPING

SYSTEM_ROLES = ("system", "developer")
LENGTH_LIMITS = frozenset({"max_tokens", "max_completion_tokens"})


def conversation_text(request: Mapping[str, Any]) -> str:
    """The text a request is matched on: its messages without the system prompt.

    A single message is its content alone (the usual question); a conversation is one
    ``role: content`` line per message.
    """
    turns = []
    for message in request.get("messages", []):
        if message.get("role") in SYSTEM_ROLES:
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(part.get("text", "")) for part in content)
        turns.append((str(message.get("role")), str(content or "")))
    if len(turns) == 1:
        return turns[0][1]
    return "\n".join(f"{role}: {content}" for role, content in turns)


def shaping_parameters(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request's parameters that change the answer, written one way for equivalent requests.

    Left out: ``user`` and ``stream`` (delivery, not content); ``max_tokens`` and
    ``max_completion_tokens`` (a length limit: :func:`serves` checks that a cached answer fits
    it); with ``temperature: 0``, ``seed`` and ``top_p`` (greedy decoding ignores them);
    ``tool_choice: "auto"`` (the default when tools are given) and ``response_format``
    ``{"type": "text"}`` (the default).
    """
    params = {
        k: v
        for k, v in request.items()
        if k not in NOT_OUTPUT_SHAPING | LENGTH_LIMITS | {"messages"} and v is not None
    }
    if params.get("temperature") == 0:
        params.pop("seed", None)
        params.pop("top_p", None)
    if params.get("tool_choice") == "auto":
        params.pop("tool_choice")
    if params.get("response_format") == {"type": "text"}:
        params.pop("response_format")
    return params


def system_prompt(request: Mapping[str, Any]) -> list[str]:
    """The system and developer messages, each with its whitespace runs made one space."""
    return [
        " ".join(str(m.get("content") or "").split())
        for m in request.get("messages", [])
        if m.get("role") in SYSTEM_ROLES
    ]


def namespace(tenant_id: str, tier: str, request: Mapping[str, Any]) -> str:
    """``<tenant>:<tier>:<hash of the system prompt and the answer-shaping parameters>``."""
    shaping = [system_prompt(request), shaping_parameters(request)]
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:32]
    return f"{tenant_id}:{tier}:{digest}"


def serves(result: Mapping[str, Any], limit: int | None) -> bool:
    """Whether a cached answer fits the length limit the request's call would have.

    ``limit`` is the request's own (``ChatRequest.requested_max_tokens``) or, when it sets
    none, its tier's ``default_max_tokens``; None for no limit. A complete answer (not cut
    by a limit) serves any limit it fits in; an answer cut at its limit serves only that same
    limit. An answer that does not say its length serves only when there is no limit.
    """
    used = (result.get("usage") or {}).get("completion_tokens")
    choices = result.get("choices") or [{}]
    if choices[0].get("finish_reason") == "length":
        return limit is not None and used == limit
    return limit is None or (used is not None and used <= limit)


def tier_of_namespace(ns: str) -> str:
    """The tier of a namespace made by :func:`namespace`."""
    return ns.split(":")[-2]
