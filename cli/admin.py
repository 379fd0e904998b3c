"""``switchyard tenants`` and ``switchyard keys``: administration from the host's shell.

The commands go through api/tenancy.py, the code the admin API runs, so they validate alike
and write the same audit entries, with no actor key (the host's CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from redis import Redis
from sqlmodel import Session, col, select

from api import tenancy
from api.keys import SCOPES
from api.principal_cache import auth_change
from schemas.admin import (
    DEFAULT_ROTATION_GRACE_S,
    MAX_ROTATION_GRACE_S,
    KeyCreate,
    TenantCreate,
    TenantUpdate,
)
from schemas.errors import SwitchyardError
from schemas.settings import load_settings
from schemas.tables import ApiKey, Tenant
from workers.audit import CLI
from workers.db import make_engine, session_scope
from workers.keys import RedisKeys

DEFAULT_SCOPES = ("submit", "read")
SCOPE_HELP = f"Repeat for each scope: {', '.join(sorted(SCOPES))}. Default: submit and read."
tenants_app = typer.Typer(help="Create, list, change, disable and enable tenants.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Create, list, revoke and rotate API keys; show the demo and admin keys.", no_args_is_help=True
)
T = TypeVar("T")
TenantArg = Annotated[str, typer.Argument(help="Tenant id (ten_...) or name.")]


@contextmanager
def admin_session(refuses_keys: bool = False) -> Iterator[Session]:
    """A session on the configured database, committed at the end; a refused change (bad
    input, unknown tenant...) becomes a usage error with the API's message. ``refuses_keys``:
    the change may refuse keys, so the API processes are told after the commit."""
    settings = load_settings()
    try:
        if refuses_keys:
            redis = Redis.from_url(settings.redis_url, socket_timeout=2)
            with auth_change(make_engine(settings), redis, RedisKeys(settings.key_prefix)) as session:
                yield session
        else:
            with session_scope(make_engine(settings)) as session:
                yield session
    except SwitchyardError as exc:
        raise typer.BadParameter(exc.message) from exc
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def parsed(model: Callable[..., T], **fields: object) -> T:
    """The request model of the admin API, from the command's options."""
    return model(**{name: value for name, value in fields.items() if value is not None})


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
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of its budgets' days (default UTC).")
    ] = None,
) -> None:
    """Create a tenant and print its id."""
    with admin_session() as session:
        body = parsed(TenantCreate, name=name, rpm_limit=rpm, max_running_jobs=max_running, timezone=timezone)
        tenant = tenancy.add_tenant(session, CLI, body)
    typer.echo(tenant.id)


@tenants_app.command("list")
def tenants_list() -> None:
    """Print every tenant: id, name, submissions per minute, running-jobs cap, zone, state."""
    with admin_session() as session:
        for tenant in session.exec(select(Tenant).order_by(Tenant.name)):
            rpm, running = _or_default(tenant.rpm_limit), _or_default(tenant.max_running_jobs)
            state = "disabled" if tenant.disabled_at else "enabled"
            typer.echo(
                f"{tenant.id}\t{tenant.name}\trpm={rpm}\tmax_running={running}\t{tenant.timezone}\t{state}"
            )


@tenants_app.command("set-limits")
def tenants_set_limits(
    tenant: TenantArg,
    rpm: Annotated[int | None, typer.Option(min=1, help="Job submissions per minute.")] = None,
    max_running: Annotated[int | None, typer.Option(min=1, help="Jobs running at once.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone of its budgets' days and months.")] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Go back to the config's defaults for both limits.")
    ] = False,
) -> None:
    """Change a tenant's limits or zone; API and workers pick limits up within 30 s."""
    changes: dict[str, object] = {"rpm_limit": None, "max_running_jobs": None} if default else {}
    changes.update(parsed(dict, rpm_limit=rpm, max_running_jobs=max_running, timezone=timezone))
    with admin_session() as session:
        found = tenancy.find_tenant(session, tenant)
        found = tenancy.update_tenant(session, CLI, found.id, TenantUpdate.model_validate(changes))
        summary = f"rpm={_or_default(found.rpm_limit)}\tmax_running={_or_default(found.max_running_jobs)}"
    typer.echo(f"{found.id}\t{summary}\t{found.timezone}")


@tenants_app.command("disable")
def tenants_disable(tenant: TenantArg) -> None:
    """Refuse the tenant's keys (403 tenant_disabled) on every API process within a second.
    Jobs it already submitted still run (docs/spend.md)."""
    _set_disabled(tenant, True)


@tenants_app.command("enable")
def tenants_enable(tenant: TenantArg) -> None:
    """Accept the tenant's keys again."""
    _set_disabled(tenant, False)


def _set_disabled(tenant: str, disabled: bool) -> None:
    with admin_session(refuses_keys=True) as session:
        found = tenancy.set_tenant_disabled(session, CLI, tenancy.find_tenant(session, tenant).id, disabled)
    typer.echo(f"{found.id}\t{'disabled' if found.disabled_at else 'enabled'}")


def _or_default(limit: int | None) -> str:
    return str(limit) if limit is not None else "default"


@keys_app.command("create")
def keys_create(
    tenant: TenantArg,
    scope: Annotated[list[str] | None, typer.Option(help=SCOPE_HELP)] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    expires_in: Annotated[
        int | None, typer.Option(min=1, help="Seconds until the key stops working.")
    ] = None,
    tier: Annotated[
        list[str] | None, typer.Option(help="Repeat for each tier it may use (default: all).")
    ] = None,
) -> None:
    """Create an API key and print it once; only its SHA-256 is stored."""
    with admin_session() as session:
        found = tenancy.find_tenant(session, tenant)
        scopes = scope or list(DEFAULT_SCOPES)
        body = parsed(
            KeyCreate, name=name, scopes=scopes, expires_in_s=expires_in, allowed_tiers=tier or None
        )
        _, secret = tenancy.add_key(session, CLI, load_settings(), found.id, body)
    typer.echo(secret)


@keys_app.command("list")
def keys_list(tenant: TenantArg) -> None:
    """Print the tenant's keys: id, prefix, name, scopes, last used, expiry, state."""
    with admin_session() as session:
        found = tenancy.find_tenant(session, tenant)
        rows = session.exec(
            select(ApiKey).where(ApiKey.tenant_id == found.id).order_by(col(ApiKey.created_at))
        )
        for key in rows:
            state = "revoked" if key.revoked_at else "active"
            typer.echo(
                f"{key.id}\t{key.display_prefix}\t{key.name}\t{key.scopes}\tlast_used={key.last_used_at}"
                f"\texpires={key.expires_at}\t{state}"
            )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id, key_...")]) -> None:
    """Revoke a key: every API process refuses it (401) within a second."""
    with admin_session(refuses_keys=True) as session:
        key = tenancy.revoke_key(session, CLI, _key_tenant(session, key_id), key_id)
    typer.echo(f"{key.id}\trevoked")


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key's id, key_...")],
    grace: Annotated[
        int, typer.Option(min=0, max=MAX_ROTATION_GRACE_S, help="Seconds the old secret keeps working.")
    ] = DEFAULT_ROTATION_GRACE_S,
) -> None:
    """Print a new secret for the key's name, scopes and tiers; the old one ends after --grace."""
    with admin_session(refuses_keys=True) as session:
        _, secret = tenancy.rotate_key(session, CLI, _key_tenant(session, key_id), key_id, grace)
    typer.echo(secret)


def _key_tenant(session: Session, key_id: str) -> str:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise typer.BadParameter(f"No API key {key_id!r}; `switchyard keys list TENANT` shows them.")
    return key.tenant_id


@keys_app.command("platform")
def keys_platform(name: Annotated[str, typer.Option(help="A label for the key.")] = "platform admin") -> None:
    """Create a platform admin key (manages every tenant over /v1/admin/) and print it once."""
    with admin_session() as session:
        _, secret = tenancy.add_platform_key(session, CLI, name)
    typer.echo(secret)


@keys_app.command("demo")
def keys_demo() -> None:
    """Print the demo tenant's key that `switchyard up` created."""
    _print_var_key("demo-key")


@keys_app.command("admin")
def keys_admin() -> None:
    """Print the platform admin key that `switchyard up` created (var/admin-key)."""
    _print_var_key("admin-key")


def _print_var_key(file: str) -> None:
    path = load_settings().var_dir / file
    if not path.exists():
        raise typer.BadParameter(f"No {file} yet: run `switchyard up` (or `make run`) once.")
    typer.echo(path.read_text().strip())
