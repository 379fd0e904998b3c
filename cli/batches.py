"""``switchyard batch``: build a batch from documents, submit it with a live progress bar, read it."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import api_key_or_demo, call
from cli.batch_build import DEFAULT_TEMPLATE, BuildError, build_lines, write_jsonl
from cli.batch_client import (
    BatchOptions,
    default_output_path,
    download,
    errors_path_for,
    fetch_batch,
    read_input,
    save,
    submit_jsonl,
    watch,
)
from cli.batch_progress import ProgressState, batch_elapsed, render_progress
from cli.jobs import ApiKey
from schemas.batches import FINAL_BATCH_STATUSES
from schemas.settings import Settings, load_settings

console = Console()
batch_app = typer.Typer(
    help="Batches of many requests in OpenAI's Batch JSONL format: build, submit, watch, fetch results.",
    no_args_is_help=True,
)
BatchId = Annotated[str, typer.Argument(help="The batch id, batch_...")]


@batch_app.command("build")
def build(
    folder: Annotated[
        Path, typer.Argument(help="Folder of .txt, .md and .json documents (searched recursively).")
    ],
    template: Annotated[
        str,
        typer.Option(help="Prompt per document: {text} is its text, {name} its file name, {path} its path."),
    ] = DEFAULT_TEMPLATE,
    tier: Annotated[
        str, typer.Option(help="Tier (or model alias) written as each line's body.model.")
    ] = "local",
    max_tokens: Annotated[int | None, typer.Option(min=1, help="max_tokens of each request.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSONL.")] = Path("batch.jsonl"),
) -> None:
    """Turn a folder of documents into a batch JSONL, one chat request per document.

    Each line's custom_id is the document's path in the folder. For .json documents {text} is
    the text, body or content field (after a title or subject), else the whole JSON.
    """
    try:
        count = write_jsonl(build_lines(folder, template, tier, max_tokens), out)
    except BuildError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {count} lines to {out}")
    typer.echo(f"submit it with: switchyard batch submit {out} --tier {tier} --wait")


@batch_app.command("submit")
def submit(
    file: Annotated[
        Path, typer.Argument(help="JSONL in OpenAI Batch input format ({custom_id, method, url, body}).")
    ],
    tier: Annotated[
        str | None, typer.Option(help="Tier for every line (default: the lines' body.model).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show live progress, then write the output file.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="Output file with --wait (default: FILE's name + .output.jsonl).")
    ] = None,
    completion_window: Annotated[
        str | None,
        typer.Option(help="`24h`: jobs may wait for the batch lane and off-peak; `now` (default): at once."),
    ] = None,
    callback_url: Annotated[
        str | None, typer.Option(help="Webhook URL told once when the batch ends.")
    ] = None,
    skip_invalid_lines: Annotated[
        bool, typer.Option("--skip-invalid-lines", help="Run the valid lines instead of rejecting the file.")
    ] = False,
    timeout: Annotated[float | None, typer.Option(help="Stop watching after this many seconds.")] = None,
    api_key: ApiKey = None,
) -> None:
    """Submit a JSONL batch; with --wait, show live progress and save the results.

    The progress bar shows counts, throughput and ETA. A file with a bad line is rejected
    whole, each bad line listed by number, unless --skip-invalid-lines.
    """
    settings = load_settings()
    key = api_key_or_demo(api_key, settings)
    options = BatchOptions(tier, completion_window, callback_url, skip_invalid_lines)
    batch = submit_jsonl(settings, key, read_input(file), options)
    announce(batch)
    if not wait:
        typer.echo(f"watch it with: switchyard batch status {batch['id']}")
        return
    batch = watch_until_done(settings, key, batch, timeout)
    raise typer.Exit(finish(settings, key, batch, output or default_output_path(file)))


@batch_app.command("status")
def status(
    batch_id: BatchId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole batch object as JSON.")] = False,
    api_key: ApiKey = None,
) -> None:
    """Show a batch: status, counts per job state, progress, ETA and cost so far."""
    settings = load_settings()
    batch = fetch_batch(settings, api_key_or_demo(api_key, settings), batch_id)
    if as_json:
        console.print_json(json.dumps(batch))
        return
    show(batch)
    for line in batch_errors(batch):
        typer.echo(line)


@batch_app.command("output")
def output(
    batch_id: BatchId,
    errors: Annotated[bool, typer.Option("--errors", help="The failed lines instead of the output.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")] = None,
    api_key: ApiKey = None,
) -> None:
    """Print or write a batch's output JSONL (OpenAI Batch output format, input order), or its errors."""
    settings = load_settings()
    key = api_key_or_demo(api_key, settings)
    if out is None:
        sys.stdout.buffer.write(download(settings, key, batch_id, errors))
        return
    count = save(settings, key, batch_id, out, errors)
    typer.echo(f"wrote {count} lines to {out}")


@batch_app.command("cancel")
def cancel(batch_id: BatchId, api_key: ApiKey = None) -> None:
    """Cancel a batch: its queued jobs are canceled; running ones finish."""
    settings = load_settings()
    show(call(settings, api_key_or_demo(api_key, settings), "POST", f"/v1/batches/{batch_id}/cancel"))


@batch_app.command("list")
def list_batches(
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    api_key: ApiKey = None,
) -> None:
    """List your batches, newest first: id, status, tier, finished/total and when created."""
    settings = load_settings()
    page = call(settings, api_key_or_demo(api_key, settings), "GET", "/v1/batches", params={"limit": limit})
    table = Table("id", "status", "tier", "finished", "created (UTC)", box=None)
    for batch in page["data"]:
        counts = batch.get("request_counts") or {}
        finished = int(counts.get("completed", 0)) + int(counts.get("failed", 0))
        created = datetime.fromtimestamp(batch["created_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            batch["id"], batch["status"], batch.get("tier"), f"{finished}/{counts.get('total', 0)}", created
        )
    console.print(table if page["data"] else "no batches yet")


def show(batch: dict[str, Any]) -> None:
    """The batch's id and tier, then its progress lines."""
    console.print(f"[bold]{batch['id']}[/] on tier {batch.get('tier')}")
    console.print(render_progress(ProgressState.from_batch(batch, batch_elapsed(batch, time.time()), 0)))


def announce(batch: dict[str, Any]) -> None:
    """Say that the batch was created, and how many lines were skipped as invalid."""
    counts = batch.get("request_counts") or {}
    skipped = (batch.get("counts") or {}).get("invalid", 0)
    note = f", {skipped} invalid line(s) skipped" if skipped else ""
    typer.echo(f"created {batch['id']} on tier {batch.get('tier')}: {counts.get('total', 0)} requests{note}")
    for line in batch_errors(batch):
        typer.echo(line)


def batch_errors(batch: dict[str, Any]) -> list[str]:
    """The batch's invalid lines, one per text line."""
    data = (batch.get("errors") or {}).get("data") or []
    return [f"  line {entry['line']}: {entry['code']}: {entry['message']}" for entry in data]


def watch_until_done(
    settings: Settings, key: str, batch: dict[str, Any], timeout: float | None
) -> dict[str, Any]:
    """Watch the batch live; Ctrl-C stops watching, not the batch."""
    try:
        return watch(settings, key, batch, console, timeout)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped watching {batch['id']}; see it with: switchyard batch status {batch['id']}")
        raise typer.Exit(130) from None


def finish(settings: Settings, key: str, batch: dict[str, Any], path: Path) -> int:
    """Save the output (and any errors) of an ended batch and say where; the exit code."""
    batch_id, state = batch["id"], batch["status"]
    if state not in FINAL_BATCH_STATUSES:
        typer.echo(f"{batch_id} is still {state}; see it with: switchyard batch status {batch_id}")
        return 2
    if state == "failed":
        typer.secho(f"{batch_id} failed; see: switchyard batch status {batch_id}", fg="red", err=True)
        return 1
    count = save(settings, key, batch_id, path)
    console.print(f"[bold green]output:[/] {count} lines written to {path}")
    if any((batch.get("counts") or {}).get(kind) for kind in ("failed", "canceled", "invalid")):
        errors_path = errors_path_for(path)
        failed = save(settings, key, batch_id, errors_path, errors=True)
        console.print(f"[bold red]errors:[/] {failed} failed lines written to {errors_path}")
    return 0 if state == "completed" else 1
