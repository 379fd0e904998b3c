"""One mapping from errors to HTTP: every 4xx/5xx body is ``{"error": {code, message, ...}}``."""

from __future__ import annotations

import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from schemas.errors import RequestValidationFailed, ServiceUnavailable, SwitchyardError, TooManyRequests
from workers.broker import UNAVAILABLE

log = structlog.get_logger("switchyard.api")
# A restarting Redis answers again within seconds (docs/redis-loss.md).
REDIS_RETRY_AFTER_S = 5.0

HTTP_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(error: SwitchyardError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON answer for a typed error."""
    return JSONResponse(error.to_body(), status_code=error.status_code, headers=headers)


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1, for a Retry-After header."""
    return str(max(1, math.ceil(seconds)))


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


async def _on_switchyard_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SwitchyardError)
    headers = None
    if isinstance(exc, TooManyRequests | ServiceUnavailable) and exc.retry_after is not None:
        headers = {"Retry-After": retry_after_header(exc.retry_after)}
    return error_response(exc, headers)


async def _on_redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A submission gets here only before its commit: once its row is committed it answers 202
    # whatever its publish does, and the reconciler publishes it (api/submission.py).
    log.warning("redis_unavailable", path=request.url.path, error_type=type(exc).__name__, error=str(exc))
    error = ServiceUnavailable("Redis is not available; try again shortly.", retry_after=REDIS_RETRY_AFTER_S)
    return await _on_switchyard_error(request, error)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    first = details[0] if details else {"loc": [], "msg": "invalid", "type": ""}
    if first["type"] == "json_invalid":
        error = _json_error(exc, details)
    else:
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
        error = RequestValidationFailed(f"Invalid request: {where}: {first['msg']}.", errors=details)
    return JSONResponse(jsonable_encoder(error.to_body()), status_code=422)


def _json_error(exc: RequestValidationError, details: list[dict[str, Any]]) -> RequestValidationFailed:
    """Where the body stops being JSON (line, column, character) and what the parser expected."""
    raw = exc.errors()[0]
    position = raw["loc"][-1] if isinstance(raw["loc"][-1], int) else 0
    document = exc.body if isinstance(exc.body, str) else ""
    line = document.count("\n", 0, position) + 1
    column = position - document.rfind("\n", 0, position)
    what = (raw.get("ctx") or {}).get("error", "JSON decode error")
    return RequestValidationFailed(
        f"The body is not valid JSON: {what} at line {line}, column {column} (character {position}).",
        errors=details,
        line=line,
        column=column,
        position=position,
    )


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": str(exc.detail)}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return JSONResponse(SwitchyardError("Internal error; it was logged.").to_body(), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the one mapping on the app."""
    app.add_exception_handler(SwitchyardError, _on_switchyard_error)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _on_redis_unavailable)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
