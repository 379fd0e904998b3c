"""Helpers of the emulator tests: an in-process client, one-message chats, scripted faults,
and the emulator served as its own process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from fastapi.testclient import TestClient
from tests_support import EMULATOR_KEY

from infra.emulator import EmulatorConfig, create_app
from infra.launch import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
RATE_HEADERS = [
    f"x-ratelimit-{part}-{kind}"
    for part in ("limit", "remaining", "reset")
    for kind in ("requests", "tokens")
]


class Reply(Protocol):
    """What the tests read of an HTTP response (httpx's, or the test client's httpx2's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    def json(self, **kwargs: Any) -> Any: ...


def make_client(**config: Any) -> TestClient:
    """Return an in-process client, sending a key, for an emulator with the given config."""
    return TestClient(create_app(EmulatorConfig(**config)), headers=EMULATOR_KEY)


def chat(client: TestClient, text: str, model: str = "gpt-4o-mini", **body: Any) -> Reply:
    """Send a one-message chat completion."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return client.post("/v1/chat/completions", json={"model": model, "messages": messages, **body})


def script(client: TestClient, **fault: Any) -> None:
    """Script faults through the control API."""
    assert client.post("/emulator/faults", json=fault).status_code == 200


def reply(response: Reply) -> str:
    """Return the assistant text of a chat completion."""
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


@pytest.fixture
def served_emulator() -> Iterator[str]:
    """Run `python -m infra.emulator` in a subprocess and yield its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "infra.emulator", "--port", str(port)]
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/emulator/stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
