"""Request dependencies: services, a DB session, and the authenticated principal.

The dependencies are ``async`` so FastAPI runs them on the event loop; only a key that is
not in the process cache costs a database lookup, in the threadpool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.keys import Principal, find_principal, hash_key
from api.services import Services
from schemas.errors import AuthenticationFailed, PermissionDenied

bearer = HTTPBearer(auto_error=False, description="A Switchyard API key, `sy_...`.")


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


async def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer sy_...``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("Send your API key as `Authorization: Bearer sy_...`.")
    key_hash = hash_key(credentials.credentials)
    principal = services.principals.get(key_hash)
    if principal is None:
        principal = await run_in_threadpool(_lookup, services, credentials.credentials)
        services.principals.put(key_hash, principal)
    return principal


def _lookup(services: Services, secret: str) -> Principal:
    with Session(services.engine) as session:
        principal = find_principal(session, secret)
    if principal is None:
        raise AuthenticationFailed("Unknown or revoked API key; create one with `switchyard keys create`.")
    return principal


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through keys holding ``scope``."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.allows(scope):
            raise PermissionDenied(f"This API key lacks the {scope!r} scope; use a key with it.", scope=scope)
        return principal

    return check


Submitter = Annotated[Principal, Depends(require("submit"))]
Reader = Annotated[Principal, Depends(require("read"))]
Admin = Annotated[Principal, Depends(require("admin"))]
