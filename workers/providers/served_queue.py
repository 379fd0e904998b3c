"""A queue served by one daemon thread, started on first use (and again in a forked child)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class ServedQueue(Generic[Item]):
    """Items for ``serve``, which runs forever on its own daemon thread reading :attr:`items`.

    The thread starts with the first :meth:`put`. A forked child does not inherit its parent's
    threads, so a ``put`` there finds the thread dead and starts a new one on a fresh queue.
    """

    def __init__(self, serve: Callable[[], None], thread_name: str) -> None:
        self._serve = serve
        self._thread_name = thread_name
        self.items: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, item: Item) -> None:
        """Queue ``item``, starting the serving thread if it is not running."""
        self._ensure_running()
        self.items.put(item)

    def _ensure_running(self) -> None:
        # is_alive() is also false in a forked child whose parent had started the thread.
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self.items = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, name=self._thread_name, daemon=True)
                self._thread.start()
