"""In-process RPM/TPM limits over a sliding window, with OpenAI's rate-limit headers.

Only admitted requests spend capacity; a refused request leaves the windows untouched.
`x-ratelimit-reset-*` is the time until the window is back to full, as OpenAI documents it;
`retry-after` on a 429 is the shorter time until this request would fit. One RateLimiter
holds the windows of one model (the emulator keeps one per model name, as OpenAI does).

Token accounting: admission spends the request's estimated cost in the TPM window (for a chat
call, its prompt tokens plus max_tokens). Once the reply is built, `RateLimiter.settle`
corrects that spend to the tokens the reply actually used, as providers that count real usage
do, so a short reply gives back the unused part of its budget (and a reply longer than the
estimate, possible when max_tokens is unset, takes more). The correction applies only while
the spend is still in the window; a request that errs after admission keeps its estimate.
"""

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


def format_duration(seconds: float) -> str:
    """Format a duration the way OpenAI's headers do: "250ms", "1s", "6m0s", "1h2m3.5s"."""
    millis = max(0, math.ceil(seconds * 1000))
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


@dataclass(slots=True)
class Spend:
    """One amount recorded in a window; `live` until it leaves the window or is cleared."""

    stamp: float
    amount: int
    live: bool = True


@dataclass
class SlidingWindow:
    """Amounts spent in the last `window_s` seconds against a limit."""

    limit: int
    window_s: float
    spent: deque[Spend] = field(default_factory=deque)
    used: int = 0

    def evict(self, now: float) -> None:
        """Forget what was spent before the window."""
        while self.spent and self.spent[0].stamp <= now - self.window_s:
            gone = self.spent.popleft()
            gone.live = False
            self.used -= gone.amount

    def clear(self) -> None:
        """Forget everything spent."""
        for entry in self.spent:
            entry.live = False
        self.spent.clear()
        self.used = 0

    def wait_for(self, amount: int, now: float) -> float:
        """Return the seconds until `amount` fits in the window (0 if it fits now)."""
        excess = self.used + amount - self.limit
        if excess <= 0:
            return 0.0
        if amount > self.limit:
            return self.window_s
        for entry in self.spent:
            excess -= entry.amount
            if excess <= 0:
                return entry.stamp + self.window_s - now
        return self.window_s

    def spend(self, amount: int, now: float) -> Spend:
        """Record an admitted amount; the returned entry can be corrected with `adjust`."""
        entry = Spend(now, amount)
        self.spent.append(entry)
        self.used += amount
        return entry

    def adjust(self, entry: Spend, amount: int, now: float) -> bool:
        """Change a recorded amount while it is still in the window; return whether it was."""
        self.evict(now)
        if not entry.live:
            return False
        self.used += amount - entry.amount
        entry.amount = amount
        return True

    def reset_in(self, now: float) -> float:
        """Return the seconds until nothing is spent in the window."""
        return self.spent[-1].stamp + self.window_s - now if self.spent else 0.0


@dataclass(frozen=True)
class Decision:
    """The outcome of asking the limiter to admit a request."""

    allowed: bool
    retry_after_s: float
    headers: dict[str, str]
    exceeded: str = ""
    tokens_spent: Spend | None = None  # the TPM window's entry of an admitted request


class RateLimiter:
    """RPM and TPM limits (either may be None, meaning unlimited) over one window length."""

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.windows: dict[str, SlidingWindow] = {}
        self.configure(rpm, tpm, window_s)

    def configure(self, rpm: int | None, tpm: int | None, window_s: float) -> None:
        """Change limits and window length, keeping what was already spent."""
        for name, limit in (("requests", rpm), ("tokens", tpm)):
            if limit is None:
                dropped = self.windows.pop(name, None)
                if dropped:
                    dropped.clear()
            elif name in self.windows:
                self.windows[name].limit, self.windows[name].window_s = limit, window_s
            else:
                self.windows[name] = SlidingWindow(limit, window_s)

    def reset(self) -> None:
        """Forget everything spent."""
        for window in self.windows.values():
            window.clear()

    def acquire(self, tokens: int) -> Decision:
        """Admit one request costing `tokens`, or refuse it with the time to wait."""
        now = self.clock()
        costs = {"requests": 1, "tokens": tokens}
        waits = {}
        for name, window in self.windows.items():
            window.evict(now)
            waits[name] = window.wait_for(costs[name], now)
        exceeded = max(waits, key=lambda name: waits[name], default="")
        if exceeded and waits[exceeded] > 0:
            return Decision(False, waits[exceeded], self._headers(now), exceeded)
        spends = {name: window.spend(costs[name], now) for name, window in self.windows.items()}
        return Decision(True, 0.0, self._headers(now), tokens_spent=spends.get("tokens"))

    def settle(self, decision: Decision, tokens: int) -> None:
        """Correct an admitted request's TPM spend to the tokens it actually used."""
        window = self.windows.get("tokens")
        if window is not None and decision.tokens_spent is not None:
            window.adjust(decision.tokens_spent, tokens, self.clock())

    def headers(self) -> dict[str, str]:
        """Return the current x-ratelimit-* headers without spending anything."""
        now = self.clock()
        for window in self.windows.values():
            window.evict(now)
        return self._headers(now)

    def _headers(self, now: float) -> dict[str, str]:
        headers = {}
        for name, window in self.windows.items():
            headers[f"x-ratelimit-limit-{name}"] = str(window.limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(max(0, window.limit - window.used))
            headers[f"x-ratelimit-reset-{name}"] = format_duration(window.reset_in(now))
        return headers
