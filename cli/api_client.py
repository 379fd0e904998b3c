"""A small HTTP client for the CLI commands that talk to a running API."""

from __future__ import annotations

from typing import Any

import httpx
import typer

from schemas.settings import Settings


def api_key_or_demo(api_key: str | None, settings: Settings) -> str:
    """The given key, else the demo key that ``switchyard up`` saved."""
    if api_key:
        return api_key
    demo = settings.var_dir / "demo-key"
    if demo.exists():
        return demo.read_text().strip()
    raise typer.BadParameter(
        "No API key: pass --api-key or set SWITCHYARD_API_KEY, or run `switchyard up` once."
    )


def call(settings: Settings, api_key: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """Call the API; on an error answer, print its code and message and exit 1."""
    try:
        response = httpx.request(
            method,
            settings.api_url + path,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=kwargs.pop("timeout", 30.0),
            **kwargs,
        )
    except httpx.HTTPError as exc:
        typer.secho(
            f"Cannot reach the API at {settings.api_url}: {exc}. Is `switchyard up` running?",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from exc
    body: dict[str, Any] = response.json()
    if response.status_code >= 400:
        error = body.get("error", {})
        typer.secho(f"{response.status_code} {error.get('code')}: {error.get('message')}", fg="red", err=True)
        raise typer.Exit(1)
    return body
