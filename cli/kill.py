"""``switchyard kill``: set, list and lift kill switches through the running API.

It goes through ``/v1/admin/kill-switches`` rather than the database (as ``switchyard tenants``
does): the API's change is what tells every worker at once (the version in Redis), and it
writes the audit entry with the key that made it. So it needs the API up and a platform admin
key: ``--api-key`` / ``SWITCHYARD_API_KEY``, else the one ``switchyard up`` saved in
``var/admin-key``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import call
from schemas.kill_switches import SCOPES
from schemas.settings import Settings, load_settings

console = Console()
kill_app = typer.Typer(
    help="Stop spending at once: every worker stops matching provider calls within a second. Calls in "
    "flight finish; matching queued jobs wait until the switch is lifted (or fail with --fail-queued). "
    "Needs the API running and a platform admin key (`switchyard keys admin`).",
    no_args_is_help=True,
)
PATH = "/v1/admin/kill-switches"
NOT_PLATFORM = (
    "`switchyard kill` needs a platform admin key: pass --api-key or set SWITCHYARD_API_KEY to the key "
    "`switchyard keys admin` prints (or one from `switchyard keys platform`)."
)
HINTS = {401: NOT_PLATFORM, 403: NOT_PLATFORM}
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="SWITCHYARD_API_KEY", help="A platform admin key (default: var/admin-key)."
    ),
]


def platform_key(api_key: str | None, settings: Settings) -> str:
    """The given key, else the platform admin key ``switchyard up`` saved."""
    if api_key:
        return api_key
    saved = settings.var_dir / "admin-key"
    if saved.exists():
        return saved.read_text().strip()
    raise typer.BadParameter(NOT_PLATFORM)


@kill_app.command("set")
def set_switch(
    scope: Annotated[str, typer.Option(help=f"What to stop: {', '.join(SCOPES)}.")],
    value: Annotated[
        str, typer.Option(help="The tenant id, key id, tier, model alias or provider; none for 'all'.")
    ] = "",
    tenant: Annotated[str | None, typer.Option(help="Stop only this tenant's calls (a tenant id).")] = None,
    fail_queued: Annotated[
        bool,
        typer.Option(
            "--fail-queued", help="Fail matching queued jobs (kill_switch) instead of holding them."
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why, for the audit log and whoever lifts it.")] = "",
    api_key: ApiKey = None,
) -> None:
    """Set a kill switch, e.g. `switchyard kill set --scope model --value emu-small`."""
    settings = load_settings()
    body = {"scope": scope, "value": value, "tenant_id": tenant, "fail_queued": fail_queued, "reason": reason}
    switch = call(settings, platform_key(api_key, settings), "POST", PATH, HINTS, json=body)
    typer.secho(f"set {switch['id']}: {_describe(switch)}", fg="red")
    typer.echo(f"lift it with: switchyard kill lift {switch['id']}")


@kill_app.command("list")
def list_switches(
    show_lifted: Annotated[bool, typer.Option("--all", help="Include lifted switches.")] = False,
    api_key: ApiKey = None,
) -> None:
    """List the active kill switches (with --all, the lifted ones too)."""
    settings = load_settings()
    page = call(settings, platform_key(api_key, settings), "GET", PATH, HINTS, params={"all": show_lifted})
    if not page["data"]:
        typer.echo("no kill switch is set" if not show_lifted else "no kill switch was ever set")
        return
    table = Table("id", "stops", "queued jobs", "set", "lifted", "reason")
    for switch in page["data"]:
        queued = "fail" if switch["fail_queued"] else "wait"
        table.add_row(
            switch["id"],
            _describe(switch),
            queued,
            switch["created_at"],
            switch["lifted_at"] or "",
            switch["reason"],
        )
    console.print(table)


@kill_app.command("lift")
def lift_switch(
    switch_id: Annotated[str, typer.Argument(help="The switch's id, ks_... (`switchyard kill list`).")],
    api_key: ApiKey = None,
) -> None:
    """Lift a kill switch: the jobs it held run again within a few seconds."""
    settings = load_settings()
    switch = call(settings, platform_key(api_key, settings), "DELETE", f"{PATH}/{switch_id}", HINTS)
    typer.secho(f"lifted {switch['id']}: {_describe(switch)}", fg="green")


def _describe(switch: dict[str, Any]) -> str:
    what = "every call" if switch["scope"] == "all" else f"{switch['scope']} {switch['value']}"
    tenant = switch.get("tenant_id")
    return f"{what} of tenant {tenant}" if tenant and switch["scope"] != "tenant" else what
