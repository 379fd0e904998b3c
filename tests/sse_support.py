"""A small Server-Sent Events client for the tests: reads a stream in a thread into a queue."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    """One parsed event; ``comment`` events are keep-alive lines, ``retry`` the reconnect hint."""

    event: str
    data: str = ""
    id: str | None = None
    received_at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.data)


def parse_lines(lines: list[str]) -> SseEvent | None:
    """One event from the lines of one block (between blank lines), as the SSE spec reads them."""
    fields: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith(":"):
            return SseEvent("comment", line[1:].strip())
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    if "retry" in fields:
        return SseEvent("retry", fields["retry"][0])
    if "data" not in fields:
        return None
    event_id = fields["id"][0] if "id" in fields else None
    return SseEvent(fields.get("event", ["message"])[0], "\n".join(fields["data"]), event_id)


class SseReader:
    """Follows ``url`` in a background thread; ``next()`` returns events in arrival order."""

    def __init__(self, url: str, headers: dict[str, str], params: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[SseEvent] = queue.Queue()
        self.status: int | None = None
        self.content_type = ""
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers, params or {}), daemon=True)
        self._thread.start()
        assert self._opened.wait(30), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        timeout = httpx.Timeout(30, read=60)
        with httpx.stream("GET", url, headers=headers, params=params, timeout=timeout) as response:
            self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
            self._opened.set()
            block: list[str] = []
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line:
                    block.append(line)
                    continue
                parsed = parse_lines(block) if block else None
                block = []
                if parsed is not None:
                    self.events.put(parsed)

    def next(self, timeout: float = 30, skip: tuple[str, ...] = ("comment", "retry")) -> SseEvent:
        """The next event not of a kind in ``skip``."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event.event not in skip:
                return event

    def drain(self, wait_s: float, skip: tuple[str, ...] = ("comment", "retry")) -> list[SseEvent]:
        """Every event that arrives within ``wait_s`` seconds."""
        got, deadline = [], time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event.event not in skip:
                got.append(event)
        return got

    def close(self) -> None:
        """Stop after the next line (keep-alive comments make that prompt)."""
        self._stop.set()
        self._thread.join(timeout=30)
