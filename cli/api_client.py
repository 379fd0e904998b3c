"""A small HTTP client for the CLI commands that talk to a running API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import typer

from schemas.settings import Settings

# Line errors of a rejected batch printed before "... and N more".
SHOWN_LINE_ERRORS = 20


def api_key_or_demo(api_key: str | None, settings: Settings) -> str:
    """The given key, else ``settings.api_key``, else the demo key that ``switchyard up`` saved."""
    if api_key:
        return api_key
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    demo = settings.var_dir / "demo-key"
    if demo.exists():
        return demo.read_text().strip()
    raise typer.BadParameter(
        "No API key: pass --api-key or set SWITCHYARD_API_KEY, or run `switchyard up` once."
    )


def send(
    settings: Settings,
    api_key: str,
    method: str,
    path: str,
    hints: Mapping[int, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Call the API; on no answer or an error answer, say what went wrong (and the ``hints`` for
    its status, if any) and exit 1."""
    try:
        response = httpx.request(
            method,
            settings.api_url + path,
            headers={"Authorization": f"Bearer {api_key}", **kwargs.pop("headers", {})},
            timeout=kwargs.pop("timeout", 30.0),
            **kwargs,
        )
    except httpx.HTTPError as exc:
        typer.secho(
            f"Cannot reach the API at {settings.api_url}: {exc}. Start it with `make run` "
            "(or `switchyard up`) in another terminal, or point SWITCHYARD_API_URL at a running one.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        _print_error(response)
        if hints and response.status_code in hints:
            typer.secho(hints[response.status_code], err=True)
        raise typer.Exit(1)
    return response


def call(
    settings: Settings,
    api_key: str,
    method: str,
    path: str,
    hints: Mapping[int, str] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Call the API and return its JSON answer; on an error, print its code and message and exit 1."""
    response = send(settings, api_key, method, path, hints, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        typer.secho(
            f"{settings.api_url}{path} did not answer with a JSON object; "
            "is SWITCHYARD_API_URL a Switchyard API?",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    return body


def _print_error(response: httpx.Response) -> None:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": "unexpected_answer", "message": response.text[:500]}
    if not isinstance(error, dict):
        error = {"code": "unexpected_answer", "message": str(error)[:500]}
    typer.secho(f"{response.status_code} {error.get('code')}: {error.get('message')}", fg="red", err=True)
    line_errors = error.get("errors") or []
    for entry in line_errors[:SHOWN_LINE_ERRORS]:
        typer.secho(f"  line {entry.get('line')}: {entry.get('code')}: {entry.get('message')}", err=True)
    more = len(line_errors[SHOWN_LINE_ERRORS:]) + int(error.get("more_errors") or 0)
    if more:
        typer.secho(f"  ... and {more} more invalid line(s)", err=True)
