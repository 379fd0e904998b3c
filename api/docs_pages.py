"""The interactive API docs, ``/docs`` (Swagger UI) and ``/redoc``, with every asset served here.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, so on a machine without
internet they are blank. The ``fastapi-offline`` package ships those assets (JavaScript, CSS,
favicon); the API serves them under ``/docs/assets`` and the pages name nothing else.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
# Swagger UI's validator badge would fetch an image from validator.swagger.io: off.
SWAGGER_PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def assets_dir() -> Path:
    """The folder of Swagger UI and ReDoc assets inside the fastapi-offline package."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets; build the app with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root, assets = _prefixes(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root, assets = _prefixes(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )


def _prefixes(request: Request) -> tuple[str, str]:
    # Behind a proxy that mounts the API under a path, URLs in the page need that root path.
    root = str(request.scope.get("root_path", ""))
    return root, root + ASSETS_URL
