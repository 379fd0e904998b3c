"""``switchyard submit`` and ``switchyard jobs show``: jobs through the HTTP API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from cli.api_client import api_key_or_demo, call
from schemas.jobs import FINAL_STATUSES
from schemas.settings import Settings, load_settings

console = Console()
jobs_app = typer.Typer(help="Read jobs from a running API.", no_args_is_help=True)
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="SWITCHYARD_API_KEY", help="sy_... key; defaults to the demo key."),
]


def submit(
    prompt: Annotated[str, typer.Argument(help="The user message to send.")],
    tier: Annotated[str, typer.Option(help="Tier to run on, e.g. local or small.")] = "local",
    max_tokens: Annotated[int | None, typer.Option(help="Cap on generated tokens.")] = None,
    system: Annotated[str | None, typer.Option(help="Optional system prompt.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result and print it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 120.0,
    api_key: ApiKey = None,
) -> None:
    """Submit one chat job and print it; with --wait, print the finished job and its answer."""
    settings = load_settings()
    key = api_key_or_demo(api_key, settings)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    request: dict[str, object] = {"messages": messages}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    job = call(settings, key, "POST", "/v1/jobs", json={"tier": tier, "request": request})
    if wait:
        job = _wait(settings, key, job["id"], timeout)
    console.print_json(json.dumps(job))
    if job.get("result"):
        console.print(f"[bold green]answer:[/] {job['result']['choices'][0]['message']['content']}")


@jobs_app.command("show")
def show(
    job_id: Annotated[str, typer.Argument(help="The job id, job_...")],
    wait: Annotated[float, typer.Option(help="Long-poll up to this many seconds.")] = 0.0,
    api_key: ApiKey = None,
) -> None:
    """Print a job as JSON."""
    settings = load_settings()
    key = api_key_or_demo(api_key, settings)
    console.print_json(
        json.dumps(call(settings, key, "GET", f"/v1/jobs/{job_id}", params={"wait": wait}, timeout=wait + 30))
    )


def _wait(settings: Settings, key: str, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {job_id}..."):
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            job = call(
                settings, key, "GET", f"/v1/jobs/{job_id}", params={"wait": min(30.0, remaining)}, timeout=60
            )
            if job["status"] in FINAL_STATUSES or remaining <= 0:
                return job
