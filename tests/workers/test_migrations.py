"""The Alembic migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import schemas.spend_tables
import schemas.tables  # noqa: F401  (registers every table on SQLModel.metadata)


def test_a_migrated_database_matches_the_models(engine: Engine) -> None:
    # A model changed without a migration (or a migration that differs from its model) shows
    # up here as a difference: a column, an index, a type or a nullability.
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)

    assert differences == []
