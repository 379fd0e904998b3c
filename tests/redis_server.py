"""A Redis server of a test's own, on a free port, that the test may kill and restart empty.

Tests that take Redis away must never touch the machine's shared Redis: this one is the
system ``redis-server`` with no persistence (``save ""``, no AOF), so a restart after
``kill()`` comes back empty, as after a failover or a restart without persistence.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from infra.launch import free_port


@dataclass
class RedisServer:
    """One redis-server process on ``port``, logging under ``directory``."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (empty) and wait until it answers PING."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "no"]  # fmt: skip
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        client = Redis.from_url(self.url, socket_timeout=1)
        while True:
            try:
                client.ping()
                break
            except RedisConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL the server: its data goes with it."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    """A started server of this test's own; killed at the end, whatever happened."""
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()
