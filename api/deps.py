"""Request dependencies: services, a DB session, and the authenticated principal.

The dependencies are ``async`` so FastAPI runs them on the event loop; only a key that is
not in the process cache costs a database lookup, in the threadpool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from sqlmodel import Session

from api.keys import PLATFORM_SCOPE, Principal, find_principal, hash_key, touch_key
from api.services import Services
from schemas.errors import AuthenticationFailed, PermissionDenied
from schemas.spend_errors import TenantDisabled
from schemas.tables import utcnow
from workers.audit import Actor


async def get_services(request: Request) -> Services:
    """The process's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """A session per request."""
    with Session(services.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class ApiKeyAuth(HTTPBearer):
    """The caller, from ``Authorization: Bearer sy_...``, let through only with one of ``scopes``.

    One dependency with no sub-dependencies: FastAPI resolves each dependency of every request
    anew, and the chain scope check -> principal -> bearer scheme + services cost a third of
    a job read's CPU. As an ``HTTPBearer`` it still documents the scheme in OpenAPI.
    """

    def __init__(self, *scopes: str) -> None:
        super().__init__(
            auto_error=False, scheme_name="HTTPBearer", description="A Switchyard API key, `sy_...`."
        )
        self.scopes = scopes

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise AuthenticationFailed("Send your API key as `Authorization: Bearer sy_...`.")
        services: Services = request.app.state.services
        principals = services.principals
        if principals.check_due():  # a Redis read, 4 a second per process (api/principal_cache.py)
            await run_in_threadpool(principals.check_epoch)
        key_hash = hash_key(credentials.credentials)
        principal = principals.get(key_hash)
        if principal is None:
            epoch = principals.epoch  # before the lookup: a change after it makes the entry stale
            principal = await run_in_threadpool(_lookup, services, credentials.credentials)
            principals.put(key_hash, principal, epoch)
        _check_usable(principal)
        if not any(principal.allows(scope) for scope in self.scopes):
            scope = " or ".join(repr(scope) for scope in self.scopes)
            raise PermissionDenied(
                f"This API key lacks the {scope} scope; use a key with it.", scope=self.scopes[0]
            )
        return principal


def _check_usable(principal: Principal) -> None:
    # Checked on every request, cached principal or not: expiry is a time, not a row change.
    if principal.expired(utcnow()):
        raise AuthenticationFailed(
            "This API key has expired (or its rotation's grace period ended); use its replacement."
        )
    if principal.tenant_disabled:
        raise TenantDisabled("This tenant is disabled; ask the platform admin to enable it.")


def _refused(principal: Principal) -> bool:
    return principal.expired(utcnow()) or principal.tenant_disabled


def _lookup(services: Services, secret: str) -> Principal:
    with Session(services.engine) as session:
        principal = find_principal(session, secret)
        if principal is None:
            raise AuthenticationFailed(
                "Unknown or revoked API key; create one with `switchyard keys create`."
            )
        # At most once a minute per key and process: a write per request would cost more than
        # the request (docs/spend.md). A refused key's attempts are not uses.
        if not _refused(principal) and services.principals.due_for_touch(principal.key_id):
            touch_key(session, principal.key_id)
    return principal


# No pattern here: a malformed cursor is a bad cursor like any other, 400 `invalid_cursor`
# from workers.paging.cursor_row, not a 422.
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Submitter = Annotated[Principal, Depends(ApiKeyAuth("submit"))]
Reader = Annotated[Principal, Depends(ApiKeyAuth("read"))]
Admin = Annotated[Principal, Depends(ApiKeyAuth("admin"))]
PlatformAdmin = Annotated[Principal, Depends(ApiKeyAuth(PLATFORM_SCOPE))]
# The audit log: a tenant's admin reads its tenant's entries, the platform admin every entry.
AdminOrPlatform = Annotated[Principal, Depends(ApiKeyAuth("admin", PLATFORM_SCOPE))]


def actor_of(request: Request, principal: Principal) -> Actor:
    """Who makes a change, for the audit log: the key, its tenant and the client's address."""
    address = request.client.host if request.client is not None else None
    return Actor(key_id=principal.key_id, tenant_id=principal.tenant_id, address=address)
