"""A real webhook receiver for tests: a FastAPI app under uvicorn on loopback, in a thread.

It checks every arrival with the ``standardwebhooks`` package itself (code Switchyard did not
write), records it, answers as scripted (e.g. 503 three times, then 200), and processes each
``webhook-id`` once through the receiver helper's dedupe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from infra.launch import free_port
from schemas.webhook_receiver import MemoryDedupe


@dataclass
class Arrival:
    headers: dict[str, str]
    body: bytes
    received_at: float
    verified_with: list[int]  # indexes of the secrets whose signature checks out
    answered: int


@dataclass
class WebhookReceiverServer:
    """Accepts deliveries signed with any of ``secrets``; ``script`` holds the next answers."""

    secrets: list[str]
    port: int = field(default_factory=free_port)
    script: list[int] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    processed: list[dict[str, Any]] = field(default_factory=list)
    dedupe: MemoryDedupe = field(default_factory=MemoryDedupe)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks")
        async def receive(request: Request) -> Response:
            body = await request.body()
            return Response(status_code=self.handle(body, dict(request.headers)))

        return app

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        verified = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(index)
            except WebhookVerificationError:
                pass
        answer = (self.script.pop(0) if self.script else 200) if verified else 401
        self.arrivals.append(Arrival(headers, body, time.time(), verified, answer))
        if answer == 200 and self.dedupe.first_time(headers["webhook-id"]):
            self.processed.append(Webhook(self.secrets[verified[0]]).verify(body, headers))
        return answer

    def start(self) -> WebhookReceiverServer:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the test receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Arrival]:
        """Wait until ``count`` deliveries arrived; all arrivals so far."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.arrivals) >= count, f"{len(self.arrivals)} of {count} deliveries arrived"
        return list(self.arrivals)
