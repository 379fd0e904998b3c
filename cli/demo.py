"""``switchyard demo`` (``make demo``): summarise examples/documents with the local model in one batch.

It uses a running API when one answers at ``api_url``; otherwise it starts the processes the
demo needs (API, beat, the demo tier's worker) the way ``switchyard up`` does, and stops them
at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from cli.api_client import api_key_or_demo
from cli.batch_build import DEFAULT_TEMPLATE, build_lines, write_jsonl
from cli.batch_client import BatchOptions, submit_jsonl
from cli.batches import announce, console, finish, watch_until_done
from infra.launch import ROOT, ProcessGroup
from schemas.settings import Settings, load_settings

DEMO_FOLDER = ROOT / "examples" / "documents"
DEMO_TIER = "local"
# 40 tokens is one sentence; the whole corpus then takes about a minute batched on 2 cores.
DEMO_MAX_TOKENS = 40
READY_TIMEOUT_S = 300.0
SHOWN_SUMMARIES = 8


def readyz_status(settings: Settings) -> int | None:
    """The HTTP status of ``/readyz`` at ``api_url`` (200: a Switchyard API), None if nothing answers."""
    try:
        return httpx.get(f"{settings.api_url}/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return None


def wait_ready(settings: Settings, processes: ProcessGroup) -> None:
    """Wait until the started API answers ``/readyz`` with 200; raise if a process died or time ran out."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while readyz_status(settings) != 200:
        processes.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{settings.api_url}/readyz did not answer 200 in {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


def refuse_start(settings: Settings, reason: str) -> typer.Exit:
    """Say why the demo cannot start its API and how to go on."""
    typer.secho(
        f"The demo could not start the API at {settings.api_url}: {reason}. Set SWITCHYARD_API_URL "
        "to a free port, or run `make run` in another terminal and then `make demo`.",
        fg="red",
        err=True,
    )
    return typer.Exit(1)


@contextlib.contextmanager
def running_api(settings: Settings, tier: str) -> Iterator[str]:
    """An API with a worker for ``tier``, started here if none runs; yields the demo key."""
    status = readyz_status(settings)
    if status == 200:
        console.print(f"using the API running at {settings.api_url}")
        yield api_key_or_demo(None, settings)
        return
    if status is not None:
        raise refuse_start(settings, f"something else answers there (/readyz gave {status})")
    # Only when no API answers: starting the stack needs migrations and the process table.
    from cli.bootstrap import prepare
    from cli.processes import process_table

    console.print("starting Redis (if needed), migrations, API, beat and a worker (first run ~30 s)...")
    redis_process, key, _ = prepare(settings)
    log_dir = settings.var_dir / "demo" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    processes = ProcessGroup(log_dir=log_dir, env=env)
    table = process_table(settings)
    try:
        for name in ("web", "beat", f"worker-{tier}"):
            processes.start(name, table[name])
        try:
            wait_ready(settings, processes)
        except (RuntimeError, TimeoutError) as exc:
            raise refuse_start(settings, str(exc)) from exc
        yield key
    finally:
        console.print(f"stopping what the demo started (logs in {log_dir})")
        processes.stop_all()
        if redis_process is not None:
            redis_process.terminate()


def summaries_table(output: Path) -> Table:
    """The first few summaries of the output file: document and answer."""
    table = Table("document", "summary", show_lines=False, expand=True)
    for raw in output.read_text(encoding="utf-8").splitlines()[:SHOWN_SUMMARIES]:
        line = json.loads(raw)
        answer = line["response"]["body"]["choices"][0]["message"]["content"]
        table.add_row(line["custom_id"], " ".join(answer.split()))
    return table


def demo(
    folder: Annotated[Path, typer.Option(help="Folder of documents to summarise.")] = DEMO_FOLDER,
    tier: Annotated[str, typer.Option(help="Tier that runs the batch.")] = DEMO_TIER,
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens per summary.")] = DEMO_MAX_TOKENS,
) -> None:
    """Summarise examples/documents with the local model through one batch, with a progress bar.

    Starts the API and a worker if none runs (and stops them after); writes the batch input and
    its output under var/demo/ and prints where.
    """
    settings = load_settings()
    demo_dir = settings.var_dir / "demo"
    batch_file = demo_dir / "documents.jsonl"
    count = write_jsonl(build_lines(folder, DEFAULT_TEMPLATE, tier, max_tokens), batch_file)
    console.print(f"{count} documents from {folder} -> {batch_file}")
    output = demo_dir / "summaries.jsonl"
    with running_api(settings, tier) as key:
        batch = submit_jsonl(settings, key, batch_file.read_bytes(), BatchOptions(tier=tier))
        announce(batch)
        batch = watch_until_done(settings, key, batch, timeout=None)
        code = finish(settings, key, batch, output)
    if code == 0:
        console.print(summaries_table(output))
        console.print(f"[bold green]all {count} summaries:[/] {output}")
    raise typer.Exit(code)
