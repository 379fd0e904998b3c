"""Starting Switchyard's processes on one machine: command lines, ports, readiness, groups.

``switchyard up``, the end-to-end tests and the benchmarks all start processes through here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def api_argv(port: int, host: str = "127.0.0.1", log_level: str = "info") -> list[str]:
    """The API under uvicorn."""
    # Above info the access log prints nothing, yet uvicorn still formats each line's arguments:
    # a third of the cost of answering hundreds of woken long-polls at once (docs/streaming.md).
    quiet = ["--no-access-log"] if log_level in ("warning", "error", "critical") else []
    return [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
            "--host", host, "--port", str(port), "--log-level", log_level, *quiet]  # fmt: skip


def emulator_argv(port: int) -> list[str]:
    """The provider emulator."""
    return [sys.executable, "-m", "infra.emulator", "--port", str(port)]


def celery_argv(*args: str, app: str = "workers.app", log_level: str | None = "INFO") -> list[str]:
    """A ``celery`` command for ``app`` (``log_level`` None for subcommands without one)."""
    level = ["--loglevel", log_level] if log_level else []
    return [sys.executable, "-m", "celery", "-A", app, *args, *level]


def worker_argv(
    queues: list[str],
    concurrency: int,
    name: str,
    app: str = "workers.app",
    log_level: str = "INFO",
    pool: str = "prefork",
) -> list[str]:
    """A Celery worker consuming ``queues``: prefork, or threads for a batching local model."""
    return celery_argv("worker", "-P", pool, "-c", str(concurrency), "-Q", ",".join(queues),
                       "-n", f"{name}@%h", app=app, log_level=log_level)  # fmt: skip


def webhook_worker_argv(
    queue: str, concurrency: int = 16, name: str = "webhooks", log_level: str = "WARNING"
) -> list[str]:
    """A threads worker for webhook attempts: each mostly waits on a receiver's answer. It logs
    from WARNING: two INFO lines per task would cost more than a delivery's own work."""
    return worker_argv([queue], concurrency, name, pool="threads", log_level=log_level)


def local_worker_argv(queues: list[str], batch_size: int, name: str, log_level: str = "INFO") -> list[str]:
    """A worker for a tier served in-process: ``batch_size`` threads, whose calls meet in batches.

    Threads, not processes: the jobs' provider calls must share one process (and one loaded
    model) to be batched together (docs/worker-batching.md).
    """
    return worker_argv(queues, batch_size, name, log_level=log_level, pool="threads")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, alive: Callable[[], None] | None = None) -> None:
    """Wait until ``url`` answers below 500; ``alive`` raises if a process it needs died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


@dataclass
class ProcessGroup:
    """Subprocesses, each in its own process group, logging to files, stopped together."""

    log_dir: Path
    env: dict[str, str]
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``argv`` as ``name``, logging to ``<log_dir>/<name>.log``."""
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.running[name] = subprocess.Popen(
                argv, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def check_alive(self) -> None:
        """Raise if any process has exited."""
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir}/{name}.log")

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children at once, as a machine crash would."""
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, name: str) -> None:
        """Stop the process and its children: SIGTERM, then SIGKILL for what is left."""
        process = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        # The group may still hold children (prefork pool processes) after the parent left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def stop_all(self) -> None:
        """Stop every process, last started first."""
        for name in reversed(list(self.running)):
            self.stop(name)
