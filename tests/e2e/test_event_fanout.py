"""Many idle GET /v1/events subscribers on one API process: cheap while idle, all told at once.

The subscribers are raw asyncio connections in this process; each notes when the first job
event reaches it. The API's CPU is read from /proc (psutil) over the idle stretch.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast
from urllib.parse import urlsplit

import psutil
import uvloop
from e2e_stack import Stack

SUBSCRIBERS = 300
IDLE_S = 3.0
# The stack sends a keep-alive comment every second (production: 15 s), so the idle cost
# measured here is mostly those: SUBSCRIBERS writes a second.
IDLE_CPU_SHARE = 0.25
FANOUT_S = 1.0


class Subscriber(asyncio.Protocol):
    """One SSE connection; notes when it is open and when the first job event arrives."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buffer = bytearray()
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[float] = loop.create_future()
        self.told: asyncio.Future[float] = loop.create_future()
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.opened.done() and b"retry:" in self.buffer:
            self.opened.set_result(now)
        if not self.told.done() and b"event: job." in self.buffer:
            self.told.set_result(now)
        if len(self.buffer) > 65_536:
            del self.buffer[:-1024]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def subscribe_and_finish_a_job(stack: Stack, api: psutil.Process) -> dict[str, float]:
    url = urlsplit(stack.api_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    key = stack.keys["b"]
    request = f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    subscribers = []
    for _ in range(SUBSCRIBERS):
        _, subscriber = await loop.create_connection(lambda: Subscriber(request), host, port)
        subscribers.append(subscriber)
    await asyncio.wait_for(asyncio.gather(*(s.opened for s in subscribers)), timeout=30)
    await asyncio.sleep(0.5)
    cpu_before, started = cpu_seconds(api), time.monotonic()
    await asyncio.sleep(IDLE_S)
    figures = {"idle_cpu_s": cpu_seconds(api) - cpu_before, "idle_s": time.monotonic() - started}
    job = await asyncio.to_thread(stack.submit, "small", "tell every subscriber", stack.keys["b"])
    done = await asyncio.to_thread(stack.wait_final, job["id"], stack.keys["b"])
    assert done["status"] == "succeeded"
    told = await asyncio.wait_for(asyncio.gather(*(s.told for s in subscribers)), timeout=30)
    figures["fanout_s"] = max(told) - min(told)
    for subscriber in subscribers:
        assert subscriber.transport is not None
        subscriber.transport.close()
    return figures


def test_idle_subscribers_cost_little_and_all_hear_an_event_together(e2e: Stack) -> None:
    api = psutil.Process(e2e.processes.running["api"].pid)

    figures = uvloop.run(subscribe_and_finish_a_job(e2e, api))

    share = figures["idle_cpu_s"] / figures["idle_s"]
    print(
        f"\nevents: {SUBSCRIBERS} idle subscribers, API CPU {figures['idle_cpu_s'] * 1000:.0f} ms over "
        f"{figures['idle_s']:.1f} s ({share:.1%} of a core, keep-alive every 1 s); one event reached all "
        f"within {figures['fanout_s'] * 1000:.0f} ms of the first"
    )
    assert share <= IDLE_CPU_SHARE
    assert figures["fanout_s"] <= FANOUT_S
