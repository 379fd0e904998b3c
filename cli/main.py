"""``switchyard``: run the platform, administer tenants and keys, submit and inspect jobs."""

from __future__ import annotations

import os
import shlex
from typing import Annotated

import typer

from cli.admin import keys_app, tenants_app
from cli.batches import batch_app
from cli.demo import demo
from cli.jobs import jobs_app, submit
from cli.kill import kill_app
from cli.top import top
from cli.usage import usage_app
from schemas.settings import load_settings

# A command imports what only it needs (honcho, migrations, the emulator, the process table)
# in its own body, so `switchyard --help` and the light commands start without them.
app = typer.Typer(
    help="Switchyard: LLM calls as durable production jobs. Start with `switchyard up`.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(batch_app, name="batch")
app.add_typer(usage_app, name="usage")
app.add_typer(kill_app, name="kill")
app.command("submit")(submit)
app.command("demo")(demo)
app.command("top")(top)


@app.command()
def up() -> None:
    """Start everything on this machine: Redis if none runs, migrations, demo key, API,
    one worker per tier, beat, Flower and the emulator."""
    from honcho.manager import Manager

    from cli.bootstrap import prepare
    from cli.processes import process_table

    settings = load_settings()
    typer.echo("Preparing: Redis, migrations, demo key, local model weights (first run ~30 s)...")
    redis_process, key, created = prepare(settings)
    if created:
        typer.secho(f"Demo API key (shown once; `switchyard keys demo` prints it again): {key}", fg="green")
    typer.secho(f"API: {settings.api_url}/docs   Flower: http://127.0.0.1:5555", fg="green")
    manager = Manager()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for name, argv in process_table(settings).items():
        manager.add_process(name, shlex.join(argv), env=env)
    try:
        manager.loop()
    finally:
        if redis_process is not None:
            redis_process.terminate()
    raise typer.Exit(manager.returncode or 0)


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest schema."""
    from workers.migrate import upgrade

    upgrade(load_settings())
    typer.echo("database is up to date")


@app.command()
def worker(
    tier: Annotated[str, typer.Option(help="The tier whose queues to serve.")],
    concurrency: Annotated[
        int | None, typer.Option(help="Worker processes (default: 1 for local models, else 4).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this node's Prometheus metrics here (default: metrics.worker_port)."),
    ] = None,
) -> None:
    """Run a Celery worker for one tier (a thin wrapper over `celery worker`), named
    `<tier>-cli-<pid>@<host>` so Flower tells it from `switchyard up`'s `<tier>@<host>`."""
    from cli.processes import standalone_node, tier_worker_argv

    settings = load_settings()
    if tier not in settings.tiers:
        raise typer.BadParameter(f"Unknown tier {tier!r}; known: {', '.join(settings.tiers)}.")
    # exec keeps the process id, so the node name carries the worker's own pid.
    argv = tier_worker_argv(settings, tier, concurrency, node=standalone_node(tier, os.getpid()))
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    os.execv(argv[0], argv)


@app.command()
def procfile() -> None:
    """Print the Procfile of the processes `switchyard up` starts with this config
    (the committed Procfile is this output for the default config)."""
    from cli.procfile import render_procfile

    typer.echo(render_procfile(load_settings()), nl=False)


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    rpm: Annotated[
        int | None, typer.Option(help="Requests per window and model before 429s (default: no limit).")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(help="Tokens per window and model before 429s (default: no limit).")
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="Added latency of every completion.")] = 0.0,
    fail_rate: Annotated[float, typer.Option(help="Share of calls answered 500/503, 0..1.")] = 0.0,
    window_s: Annotated[
        float, typer.Option(min=0.001, help="Length of the rate-limit window; 60 is a real minute.")
    ] = 60.0,
    batch_delay_s: Annotated[
        float, typer.Option(min=0.0, help="How long a Batch API batch runs before it completes.")
    ] = 0.5,
    api_key: Annotated[
        str | None,
        typer.Option(help="The one API key /v1 calls must carry (default: any bearer key; none is 401)."),
    ] = None,
) -> None:
    """Run the OpenAI-compatible provider emulator: deterministic answers, real usage,
    per-model rate limits with 429 and x-ratelimit headers, injected latency and faults,
    and the Files and Batches endpoints (docs/provider-batches.md)."""
    from infra.emulator.server import serve

    serve(
        host=host,
        port=port,
        rpm=rpm,
        tpm=tpm,
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        window_s=window_s,
        batch_delay_s=batch_delay_s,
        api_key=api_key,
    )


if __name__ == "__main__":
    app()
