"""Database engine and sessions: SQLite by default, PostgreSQL via ``DATABASE_URL``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from schemas.settings import Settings


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database, tuned for many processes sharing it."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        # The pool holds as many connections as the API's threadpool runs requests (40): with
        # SQLAlchemy's default of 5 plus overflow, every burst opened and closed connections,
        # each paying its connect and the PRAGMAs below. An idle SQLite connection costs little.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40, max_overflow=10
        )
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    # No pre-ping: it costs a round trip per checkout. Connections are recycled instead; one
    # broken by a database restart fails that attempt, the pool reconnects, and the
    # reconciler retries the job once its lease expires.
    return create_engine(url, pool_recycle=300, pool_size=10, max_overflow=20)


def _tune_sqlite(connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout queues writers instead of failing.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
