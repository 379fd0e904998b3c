"""``switchyard usage``: usage and cost as a table or CSV, from the API; and the rollups' backfill."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import api_key_or_demo, call, send
from schemas.settings import load_settings
from schemas.usage_reports import FIGURES

console = Console()
usage_app = typer.Typer()  # its help is the callback's docstring
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="SWITCHYARD_API_KEY", help="sy_... key; defaults to the demo key."),
]
GroupBy = Annotated[
    list[str] | None,
    typer.Option(
        "--group-by",
        "-g",
        help="Group by day, hour, tier, model, provider, api_key, priority, batch or metadata.<key>; "
        "repeat or comma-separate. Days and hours are UTC.",
    ),
]
Start = Annotated[str | None, typer.Option("--from", help="Start, inclusive, ISO 8601 (e.g. 2026-11-01).")]
End = Annotated[str | None, typer.Option("--to", help="End, exclusive, ISO 8601.")]
# Money shown with more places than cents: one small call costs a fraction of a cent.
_MONEY = ("cost_usd", "cache_savings_usd")


@usage_app.callback(invoke_without_command=True)
def usage(
    ctx: typer.Context,
    group_by: GroupBy = None,
    start: Start = None,
    end: End = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV (a header row, one line per group).")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Platform admin keys: whose usage.")] = None,
    api_key: ApiKey = None,
) -> None:
    """Usage and cost of your tenant: jobs, provider calls, tokens, cost and cache savings per
    group, with totals, over [--from, --to) (default: this UTC month).

    Asks the running API (GET /v1/usage) with your key, so it shows what the API answers.
    Example: switchyard usage --group-by day,model --from 2026-11-01 --to 2026-12-01.
    The backfill of the hourly rollups: switchyard usage rebuild-rollups --help.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    key = api_key_or_demo(api_key, settings)
    params = {"group_by": group_by or [], "from": start, "to": end, "tenant_id": tenant}
    params = {name: value for name, value in params.items() if value}
    if csv:
        response = send(settings, key, "GET", "/v1/usage", params=params, headers={"Accept": "text/csv"})
        typer.echo(response.text, nl=False)
        return
    console.print(report_table(call(settings, key, "GET", "/v1/usage", params=params)))


def report_table(report: dict[str, Any]) -> Table:
    """The report as a rich table: the group columns, the figures, and a totals row."""
    group_by: list[str] = report.get("group_by") or []
    title = f"Usage {report['from']} to {report['to']} (from the {report['source']} data)"
    table = Table(title=title, show_footer=bool(group_by))
    for name in group_by:
        table.add_column(name, footer="total" if name == group_by[0] else "")
    for name in FIGURES:
        table.add_column(name, justify="right", footer=_shown(name, report["totals"][name]))
    for row in report["rows"] if group_by else [report["totals"]]:
        values = [str(row[name]) if row[name] is not None else "-" for name in group_by]
        table.add_row(*values, *(_shown(name, row[name]) for name in FIGURES))
    return table


def _shown(name: str, value: Any) -> str:
    return f"{value:.6f}" if name in _MONEY else f"{value:,}"


@usage_app.command("rebuild-rollups")
def rebuild(
    start: Annotated[datetime | None, typer.Option("--from", help="First hour to rebuild (UTC).")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="End, exclusive (default: now).")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="One tenant's only (default: all).")] = None,
) -> None:
    """Recompute the hourly usage rollups from the usage rows and jobs, on this host's database.

    For usage written before the rollups existed, or to check them. Idempotent: the hours in the
    range are deleted and summed again in one transaction. Rebuild past hours; a call settling
    in an hour being rebuilt may be missed or counted twice.
    """
    from workers.db import make_engine
    from workers.usage_rebuild import rebuild_rollups

    engine = make_engine(load_settings())
    written = rebuild_rollups(engine, start, end, tenant)
    typer.echo(f"Rebuilt the rollups: {written} sums written.")
