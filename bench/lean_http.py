"""A lean keep-alive JSON client for the benchmark's own side of the wire.

The benchmark client is harness, not platform: what it costs is not Switchyard's overhead, yet
on two shared cores every millisecond of client CPU is taken from the API and the worker. An
``httpx.Client`` spends about 2 ms of CPU per request here (request and response models,
header normalisation, its transport and pool layers); ``http.client`` on one kept-alive
connection does the same HTTP/1.1 exchange for a fraction of that. The requests themselves
are unchanged: the same method, path, headers, JSON body and query string.

It covers what the benchmarks use: ``post(path, json=...)`` and ``get(path, params=...)``
answering an object with ``status_code``, ``text`` and ``json()``, so the helpers in
``switchyard_side`` take it or an ``httpx.Client`` alike. A request that finds its kept-alive
connection closed by the server before any answer is sent again once on a new connection, as
urllib3 does; every other failure raises :class:`HTTPFailure`.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class HTTPFailure(RuntimeError):
    """The request got no answer: connection refused or lost, timeout, malformed response."""


class LeanResponse:
    """A status code and a body."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)


class LeanClient:
    """One kept-alive HTTP/1.1 connection to ``base_url``, sending ``headers`` on every request."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port base URLs are supported, not {base_url!r}")
        self._host, self._port, self._timeout = parts.hostname, parts.port or 80, timeout
        self._headers = {"Host": parts.netloc, "Accept": "application/json", **headers}
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, json: Any) -> LeanResponse:
        """POST ``json`` to ``path``."""
        body = _dumps(json).encode()
        return self._request("POST", path, body, {"Content-Type": "application/json"})

    def get(self, path: str, params: dict[str, Any] | None = None) -> LeanResponse:
        """GET ``path`` with ``params`` as its query string."""
        return self._request("GET", f"{path}?{urlencode(params)}" if params else path, None, {})

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, target: str, body: bytes | None, extra: dict[str, str]) -> LeanResponse:
        headers = {**self._headers, **extra}
        reused = self._connection is not None
        try:
            return self._exchange(method, target, body, headers)
        except STALE_CONNECTION as exc:
            self.close()
            if not reused:
                raise HTTPFailure(f"{method} {target}: {exc!r}") from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise HTTPFailure(f"{method} {target}: {exc!r}") from exc
        try:  # the server had closed the kept-alive connection: once more on a new one
            return self._exchange(method, target, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise HTTPFailure(f"{method} {target}: {exc!r}") from exc

    def _exchange(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> LeanResponse:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._connection.request(method, target, body=body, headers=headers)
        response = self._connection.getresponse()
        content = response.read()
        if response.will_close:
            self.close()
        return LeanResponse(response.status, content)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
