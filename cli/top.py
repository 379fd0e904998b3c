"""``switchyard top``: the dashboard's figures in the terminal, refreshed live (rich).

It reads ``GET /v1/dashboard`` with your key, so it shows exactly what the web dashboard
shows that key (docs/observability.md, "switchyard top").
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.api_client import api_key_or_demo, call
from schemas.settings import Settings, load_settings

console = Console()


def top(
    interval: Annotated[
        float, typer.Option("--interval", "-n", min=0.5, help="Seconds between refreshes.")
    ] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (for scripts and tests).")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="SWITCHYARD_API_KEY", help="sy_... key; defaults to the demo key."),
    ] = None,
) -> None:
    """A live view of the dashboard's figures: jobs/s, queues and drain times, latency
    percentiles per model, error and 429 rates, cache hits and savings, spend today and
    budgets, limiter headroom, dead letters, kill switches and the latest failed jobs.

    It asks the running API (GET /v1/dashboard) with your key: a tenant key sees its tenant,
    admin and platform keys also every queue and model, a platform key every tenant.
    Ctrl-C quits. Example: switchyard top --interval 5; switchyard top --once > snapshot.txt.
    """
    settings = load_settings()
    key = api_key_or_demo(api_key, settings)
    if once:  # an error answer exits 1 with its code and message (cli/api_client.py)
        console.print(render(call(settings, key, "GET", "/v1/dashboard")))
        return
    with Live(Text("loading..."), console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                live.update(frame(settings, key))
                time.sleep(interval)
        except KeyboardInterrupt:
            pass


def frame(settings: Settings, key: str) -> RenderableType:
    """The next frame; an unreachable API or an error answer is shown, and retried next time."""
    try:
        response = httpx.get(
            settings.api_url + "/v1/dashboard", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
    except httpx.HTTPError as exc:
        return Text(f"Cannot reach the API at {settings.api_url}: {exc}; retrying.", style="red")
    if response.status_code != 200:
        return Text(f"{response.status_code}: {response.text[:300]}; retrying.", style="red")
    return render(response.json())


def render(data: dict[str, Any]) -> RenderableType:
    """Every panel of the dashboard as rich renderables, top to bottom."""
    scope = "every tenant" if data["scope"] == "platform" else f"tenant {data['tenant_id']}"
    title = f"Switchyard: {scope} at {data['generated_at']} ({data['took_ms']} ms)"
    return Group(
        Text(title, style="bold"),
        _summary(data),
        _queues(data["queues"]),
        _latency(data["calls"]),
        _limiter(data["limiter"]),
        _failed(data["failed_jobs"], data["kill_switches"]),
    )


def _summary(data: dict[str, Any]) -> Table:
    t, calls, jobs, cache, spend = (data[k] for k in ("throughput", "calls", "jobs", "cache", "spend"))
    table = Table.grid(padding=(0, 3))
    submitted = "-" if t["submitted_per_s"] is None else f"{t['submitted_per_s']:.2f}"
    rows = [
        ("jobs ended/s", f"{t['ended_per_s']:.2f} ({t['ended']} in {t['window_s']:.0f} s)"),
        ("submitted/s", submitted),
        (
            "job failures",
            f"{_pct(jobs['failure_rate'])} ({jobs['failed']} of {jobs['ended']}, {_codes(jobs)})",
        ),
        ("call errors", f"{_pct(calls['error_rate'])} of {calls['calls']} calls"),
        ("provider 429s", f"{_pct(calls['rate_limited_rate'])} ({calls['rate_limited']})"),
        ("cache today", f"{_pct(cache['hit_rate_today'])} hits, ${cache['savings_today_usd']:.4f} saved"),
        ("spend today", f"${spend['today_usd']:.4f} in {spend['calls_today']} calls{_budgets(spend)}"),
        ("dead letters", str(data["webhooks"]["dead_letters"])),
    ]
    for name, value in rows:
        table.add_row(Text(name, style="dim"), value)
    return table


def _queues(queues: dict[str, Any]) -> Panel:
    if queues["tiers"] is None:
        table = Table("tier", "queued live", "queued batch", "running", expand=True)
        for tier in queues["backlog"]:
            queued = tier["queued"]
            table.add_row(
                tier["tier"], str(queued.get("live", 0)), str(queued.get("batch", 0)), str(tier["running"])
            )
        return Panel(table if queues["backlog"] else Text("nothing queued or running"), title="your backlog")
    table = Table("tier", "live", "batch", "precompute", "drain s", "state", expand=True)
    for tier in queues["tiers"]:
        queued = tier["queued"]
        state = "full" if tier["full"] else "saturated" if tier["live_saturated"] else "ok"
        table.add_row(
            tier["tier"],
            *(str(queued.get(name, 0)) for name in ("live", "batch", "precompute")),
            f"{tier['total_drain_s']:.1f}",
            Text(state, style="green" if state == "ok" else "red"),
        )
    return Panel(table, title="queues")


def _latency(calls: dict[str, Any]) -> Panel:
    table = Table("model", "provider", "calls", "p50 ms", "p95 ms", "p99 ms", "errors", "429s", expand=True)
    for model in calls["models"]:
        figures = (model[name] for name in ("calls", "p50_ms", "p95_ms", "p99_ms", "errors", "rate_limited"))
        table.add_row(model["model"], model["provider"], *(str(value) for value in figures))
    body: RenderableType = table if calls["models"] else Text("no provider call in the window")
    return Panel(body, title=f"latency, last {calls['window_s'] / 60:.0f} min")


def _limiter(limiter: dict[str, Any]) -> Panel:
    tenant = limiter["tenant"]
    lines: list[RenderableType] = [
        Text(
            f"your submissions {tenant['submissions_used']}/{tenant['rpm'] or '∞'}, "
            f"running {tenant['running']}/{tenant['max_running_jobs'] or '∞'}"
        )
    ]
    if limiter["models"]:
        table = Table("model", "requests left", "tokens left", "in flight", "paused s", expand=True)
        for model in limiter["models"]:
            table.add_row(
                model["model"],
                str(model["requests_headroom"]),
                str(model["tokens_headroom"]),
                str(model["in_flight"]),
                str(model["paused_s"]),
            )
        lines.append(table)
    return Panel(Group(*lines), title="limiter")


def _failed(jobs: list[dict[str, Any]], switches: list[dict[str, Any]]) -> Panel:
    table = Table("job", "tier", "error", "ended", expand=True)
    for job in jobs:
        table.add_row(job["id"], job["tier"], job["error_code"] or "-", str(job["finished_at"] or "-"))
    parts: list[RenderableType] = [table if jobs else Text("no failed job among the recent ones")]
    for switch in switches:
        parts.append(
            Text(f"kill switch: {switch['scope']} {switch['value']} ({switch['reason']})", style="red")
        )
    return Panel(Group(*parts), title="latest failed jobs")


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def _codes(jobs: dict[str, Any]) -> str:
    codes = sorted(jobs["by_error_code"].items(), key=lambda item: -item[1])
    return ", ".join(f"{code} {count}" for code, count in codes[:3]) or "none"


def _budgets(spend: dict[str, Any]) -> str:
    limited = [b for b in spend["budgets"] if b.get("limit_usd")]
    return "".join(
        f"; {b['name'] or b['id']} ${b['spent_usd']:.4f}/${b['limit_usd']:.2f}" for b in limited[:3]
    )
