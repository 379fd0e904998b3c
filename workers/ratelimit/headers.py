"""Reading a provider's rate-limit headers (OpenAI's names and duration format)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float | None:
    """Seconds from "250ms", "1s", "6m0s" or "1h2m3.5s"; a bare number is seconds."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)


@dataclass(frozen=True)
class Remaining:
    """What the provider says is left of one limit, and when it is whole again."""

    kind: str  # "requests" or "tokens"
    remaining: int
    reset_s: float


def remaining_from(headers: Mapping[str, str]) -> list[Remaining]:
    """The ``x-ratelimit-remaining-*`` / ``x-ratelimit-reset-*`` pairs present in ``headers``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    found = []
    for kind in ("requests", "tokens"):
        remaining = lowered.get(f"x-ratelimit-remaining-{kind}")
        reset = parse_duration(lowered.get(f"x-ratelimit-reset-{kind}", "0s"))
        if remaining is None or not remaining.strip().isdigit() or reset is None:
            continue
        found.append(Remaining(kind, int(remaining), reset))
    return found
