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

from api.keys import Principal, find_principal, hash_key
from api.services import Services
from schemas.errors import AuthenticationFailed, PermissionDenied


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
    """The caller, from ``Authorization: Bearer sy_...``, let through only with ``scope``.

    One dependency with no sub-dependencies: FastAPI resolves each dependency of every request
    anew, and the chain scope check -> principal -> bearer scheme + services cost a third of
    a job read's CPU. As an ``HTTPBearer`` it still documents the scheme in OpenAPI.
    """

    def __init__(self, scope: str) -> None:
        super().__init__(
            auto_error=False, scheme_name="HTTPBearer", description="A Switchyard API key, `sy_...`."
        )
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise AuthenticationFailed("Send your API key as `Authorization: Bearer sy_...`.")
        services: Services = request.app.state.services
        key_hash = hash_key(credentials.credentials)
        principal = services.principals.get(key_hash)
        if principal is None:
            principal = await run_in_threadpool(_lookup, services, credentials.credentials)
            services.principals.put(key_hash, principal)
        if not principal.allows(self.scope):
            raise PermissionDenied(
                f"This API key lacks the {self.scope!r} scope; use a key with it.", scope=self.scope
            )
        return principal


def _lookup(services: Services, secret: str) -> Principal:
    with Session(services.engine) as session:
        principal = find_principal(session, secret)
    if principal is None:
        raise AuthenticationFailed("Unknown or revoked API key; create one with `switchyard keys create`.")
    return principal


# No pattern here: a malformed cursor is a bad cursor like any other, 400 `invalid_cursor`
# from workers.paging.cursor_row, not a 422.
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Submitter = Annotated[Principal, Depends(ApiKeyAuth("submit"))]
Reader = Annotated[Principal, Depends(ApiKeyAuth("read"))]
Admin = Annotated[Principal, Depends(ApiKeyAuth("admin"))]
