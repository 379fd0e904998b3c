"""``switchyard tenants`` and ``switchyard keys``: direct database administration."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session, select

from api.keys import SCOPES, create_key, create_tenant
from schemas.settings import load_settings
from schemas.tables import Tenant
from workers.db import make_engine, session_scope

DEFAULT_SCOPES = ("submit", "read")
SCOPE_HELP = f"Repeat for each scope: {', '.join(sorted(SCOPES))}. Default: submit and read."
tenants_app = typer.Typer(help="Create and list tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="Create API keys and show the demo key.", no_args_is_help=True)


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="A unique tenant name.")],
    rpm: Annotated[
        int | None, typer.Option(min=1, help="Job submissions per minute (default: rate_limits.tenant_rpm).")
    ] = None,
    max_running: Annotated[
        int | None,
        typer.Option(min=1, help="Jobs running at once (default: rate_limits.tenant_max_running)."),
    ] = None,
) -> None:
    """Create a tenant and print its id."""
    with session_scope(make_engine(load_settings())) as session:
        tenant = create_tenant(session, name, rpm_limit=rpm, max_running_jobs=max_running)
    typer.echo(tenant.id)


@tenants_app.command("list")
def tenants_list() -> None:
    """Print every tenant: id, name, submissions per minute and running-jobs cap."""
    with session_scope(make_engine(load_settings())) as session:
        for tenant in session.exec(select(Tenant).order_by(Tenant.name)):
            rpm, running = _or_default(tenant.rpm_limit), _or_default(tenant.max_running_jobs)
            typer.echo(f"{tenant.id}\t{tenant.name}\trpm={rpm}\tmax_running={running}")


@tenants_app.command("set-limits")
def tenants_set_limits(
    tenant: Annotated[str, typer.Argument(help="Tenant id (ten_...) or name.")],
    rpm: Annotated[int | None, typer.Option(min=1, help="Job submissions per minute.")] = None,
    max_running: Annotated[int | None, typer.Option(min=1, help="Jobs running at once.")] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Go back to the config's defaults for both limits.")
    ] = False,
) -> None:
    """Change a tenant's limits; API and workers pick them up within 30 s."""
    with session_scope(make_engine(load_settings())) as session:
        found = _find_tenant(session, tenant)
        if default:
            found.rpm_limit = found.max_running_jobs = None
        if rpm is not None:
            found.rpm_limit = rpm
        if max_running is not None:
            found.max_running_jobs = max_running
        session.add(found)
        summary = f"rpm={_or_default(found.rpm_limit)}\tmax_running={_or_default(found.max_running_jobs)}"
    typer.echo(f"{found.id}\t{summary}")


def _or_default(limit: int | None) -> str:
    return str(limit) if limit is not None else "default"


def _find_tenant(session: Session, tenant: str) -> Tenant:
    found = session.exec(select(Tenant).where((Tenant.id == tenant) | (Tenant.name == tenant))).first()
    if found is None:
        raise typer.BadParameter(f"No tenant {tenant!r}; create it with `switchyard tenants create`.")
    return found


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Argument(help="Tenant id (ten_...) or name.")],
    scope: Annotated[list[str] | None, typer.Option(help=SCOPE_HELP)] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create an API key and print it once; only its SHA-256 is stored."""
    with session_scope(make_engine(load_settings())) as session:
        found = _find_tenant(session, tenant)
        try:
            secret = create_key(session, found.id, set(scope or DEFAULT_SCOPES), name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    typer.echo(secret)


@keys_app.command("demo")
def keys_demo() -> None:
    """Print the demo tenant's key that `switchyard up` created."""
    path = load_settings().var_dir / "demo-key"
    if not path.exists():
        raise typer.BadParameter("No demo key yet: run `switchyard up` (or `make run`) once.")
    typer.echo(path.read_text().strip())
