"""The provider emulator's ASGI app: OpenAI's chat.completions, embeddings, models, files and
batches routes.

The /v1 routes are plain Starlette routes that read the JSON by hand, because benchmarks push
thousands of calls a second through them and FastAPI's body validation would dominate. The
/emulator control API (control.py) is ordinary FastAPI.
"""

import json

from fastapi import FastAPI, Request, Response

from infra.emulator.auth import RequireKey
from infra.emulator.batch_api import router as batch_router
from infra.emulator.calls import BadRequest, parse_chat, parse_embeddings, read_json
from infra.emulator.control import router as control_router
from infra.emulator.file_api import router as file_router
from infra.emulator.provider import Emulator, EmulatorConfig, current_emulator

__all__ = ["EmulatorConfig", "create_app"]

MODELS = ("gpt-4o-mini", "gpt-4o", "emulator-chat", "text-embedding-3-small")


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions."""
    emulator = current_emulator(request)
    try:
        call = parse_chat(await read_json(request))
    except BadRequest as error:
        return emulator.bad_request(error)
    return await emulator.call(call.model, call.cost, call.reply, call.stream, call.include_usage)


async def embeddings(request: Request) -> Response:
    """POST /v1/embeddings."""
    emulator = current_emulator(request)
    try:
        call = parse_embeddings(await read_json(request))
    except BadRequest as error:
        return emulator.bad_request(error)
    return await emulator.call(call.model, call.tokens, call.reply)


async def list_models(request: Request) -> Response:
    """GET /v1/models."""
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "emulator"} for m in MODELS]
    return Response(json.dumps({"object": "list", "data": data}), media_type="application/json")


def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    """Build an emulator app; each app has its own limits, faults and counters."""
    app = FastAPI(title="Switchyard provider emulator", docs_url=None, redoc_url=None)
    config = config or EmulatorConfig()
    app.state.emulator = Emulator(config)
    app.add_middleware(RequireKey, api_key=config.api_key)
    app.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_route("/v1/embeddings", embeddings, methods=["POST"])
    app.add_route("/v1/models", list_models, methods=["GET"])
    app.include_router(control_router)
    app.include_router(file_router)
    app.include_router(batch_router)
    return app
