"""ASGI middleware that refuses request bodies over the configured size with 413.

Uploads of batch inputs (``POST /v1/files`` and ``POST /v1/batches``) have their own, larger
limit (200 MB, as OpenAI's); every other route keeps ``max_body_bytes``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from schemas.errors import PayloadTooLarge

UPLOAD_PATHS = frozenset({"/v1/files", "/v1/batches"})


class BodySizeLimit:
    """Reads the body up to its route's limit before the app sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.upload_max_bytes if scope["path"].rstrip("/") in UPLOAD_PATHS else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        body, complete = await self._read(receive, limit)
        if not complete:
            await self._refuse(scope, receive, send, limit)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, limit: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = PayloadTooLarge(
            f"The request body is over {limit} bytes; send a smaller body or use "
            "the batches API for many jobs.",
            max_bytes=limit,
        )
        await error_response(error)(scope, receive, send)


def _replay(body: bytes, downstream: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:  # after the body, pass on what the server sends (e.g. a disconnect)
            return await downstream()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
