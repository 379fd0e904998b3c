"""Batches through the HTTP API for the CLI: submit a JSONL file, watch it live, save its files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live

from cli.api_client import call, send
from cli.batch_progress import ProgressState, render_progress
from schemas.batches import FINAL_BATCH_STATUSES
from schemas.settings import Settings

POLL_INTERVAL_S = 1.0


@dataclass(frozen=True)
class BatchOptions:
    """The query parameters of the direct ``POST /v1/batches`` form."""

    tier: str | None = None
    completion_window: str | None = None
    callback_url: str | None = None
    skip_invalid_lines: bool = False

    def params(self) -> dict[str, str]:
        values = {
            "tier": self.tier,
            "completion_window": self.completion_window,
            "callback_url": self.callback_url,
            "skip_invalid_lines": "true" if self.skip_invalid_lines else None,
        }
        return {name: value for name, value in values.items() if value is not None}


def read_input(path: Path) -> bytes:
    """The JSONL file's bytes, or a message saying how to make one."""
    if not path.is_file():
        typer.secho(
            f"{path} does not exist. Make one from a folder of documents with "
            "`switchyard batch build FOLDER --out FILE.jsonl`.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    data = path.read_bytes()
    if not data.strip():
        typer.secho(f"{path} is empty: a batch needs one JSON request per line.", fg="red", err=True)
        raise typer.Exit(1)
    return data


def submit_jsonl(settings: Settings, key: str, data: bytes, options: BatchOptions) -> dict[str, Any]:
    """Create a batch from JSONL bytes in OpenAI Batch input format; the batch object."""
    return call(
        settings, key, "POST", "/v1/batches",
        content=data, params=options.params(), headers={"Content-Type": "application/jsonl"}, timeout=300,
    )  # fmt: skip


def fetch_batch(settings: Settings, key: str, batch_id: str) -> dict[str, Any]:
    """The batch object as the API shows it now."""
    return call(settings, key, "GET", f"/v1/batches/{batch_id}")


def watch(
    settings: Settings, key: str, batch: dict[str, Any], console: Console, timeout: float | None = None
) -> dict[str, Any]:
    """Poll the batch until it ends (or ``timeout``), redrawing the progress line; the last object."""
    started = time.monotonic()
    counts = batch.get("request_counts") or {}
    finished_at_start = int(counts.get("completed", 0)) + int(counts.get("failed", 0))

    def view(current: dict[str, Any]) -> Any:
        return render_progress(
            ProgressState.from_batch(current, time.monotonic() - started, finished_at_start)
        )

    with Live(view(batch), console=console, refresh_per_second=4, transient=False) as live:
        while batch["status"] not in FINAL_BATCH_STATUSES:
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            time.sleep(POLL_INTERVAL_S)
            batch = fetch_batch(settings, key, batch["id"])
            live.update(view(batch))
    if not console.is_terminal:
        console.line()  # off a terminal Live prints its last frame without a final newline
    return batch


def download(settings: Settings, key: str, batch_id: str, errors: bool = False) -> bytes:
    """The batch's output JSONL (or its error JSONL), in input order."""
    which = "errors" if errors else "output"
    return send(settings, key, "GET", f"/v1/batches/{batch_id}/{which}", timeout=300).content


def save(settings: Settings, key: str, batch_id: str, path: Path, errors: bool = False) -> int:
    """Write the output (or error) file to ``path``; the number of lines written."""
    data = download(settings, key, batch_id, errors)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sum(1 for line in data.splitlines() if line.strip())


def default_output_path(input_path: Path) -> Path:
    """``docs.jsonl`` -> ``docs.output.jsonl`` beside the input."""
    return input_path.with_name(f"{input_path.stem}.output.jsonl")


def errors_path_for(output_path: Path) -> Path:
    """Where the error lines go beside an output file: ``docs.output.jsonl`` -> ``docs.errors.jsonl``."""
    stem = output_path.name.removesuffix(".jsonl").removesuffix(".output")
    return output_path.with_name(f"{stem}.errors.jsonl")
