"""The emulator asks for an API key on its /v1 routes, as a provider does.

A call without ``Authorization: Bearer <key>`` answers 401. With ``api_key`` configured, a call
with any other key answers 401 too; without it, any key is taken (the emulator has no
accounts). This is what catches an adapter that forgets to send its key.
"""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.emulator.faults import error_body

MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
WRONG = "Incorrect API key provided."


def key_problem(headers: list[tuple[bytes, bytes]], api_key: str | None) -> str | None:
    """Why a call with these raw headers is refused, or None when its key is good."""
    value = next((v for k, v in headers if k == b"authorization"), b"").decode("latin-1")
    scheme, _, key = value.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return MISSING
    if api_key is not None and key != api_key:
        return WRONG
    return None


class RequireKey:
    """ASGI middleware: 401 for /v1 calls whose key is missing or, when one is set, wrong."""

    def __init__(self, app: ASGIApp, api_key: str | None = None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            problem = key_problem(scope["headers"], self.api_key)
            if problem is not None:
                await JSONResponse(error_body(401, problem), status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)
