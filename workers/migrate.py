"""Database migrations (Alembic), run from code so every command shares one path."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from schemas.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "infra" / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointing at ``infra/migrations`` and the configured database."""
    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    """Take the schema back down to ``revision``."""
    command.downgrade(alembic_config(settings), revision)
