"""Which cached questions a request may be matched with, and on what text.

**Namespace.** An entry is only ever compared with entries of the same namespace: the
tenant, the tier, a hash of the system prompt and a hash of every output-shaping parameter
(all request fields except the messages, ``user`` and ``stream``). So a hit never crosses a
tenant, and never serves an answer written for another system prompt, temperature or
``max_tokens``.

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


def namespace(tenant_id: str, tier: str, request: Mapping[str, Any]) -> str:
    """``<tenant>:<tier>:<hash of system prompt and output-shaping parameters>``."""
    system = [
        m.get("content") for m in request.get("messages", []) if m.get("role") in ("system", "developer")
    ]
    shaping = {
        k: v for k, v in request.items() if k not in NOT_OUTPUT_SHAPING | {"messages"} and v is not None
    }
    digest = hashlib.sha256(json.dumps([system, shaping], sort_keys=True).encode()).hexdigest()[:32]
    return f"{tenant_id}:{tier}:{digest}"


def tier_of_namespace(ns: str) -> str:
    """The tier of a namespace made by :func:`namespace`."""
    return ns.split(":")[-2]
