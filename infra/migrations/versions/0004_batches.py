"""batches: job kinds and batch membership, files and batches tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import schemas.tables

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="chat"
            )
        )
        batch_op.add_column(sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column("batch_line", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("custom_id", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True)
        )
        batch_op.add_column(
            sa.Column("completion_window", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True)
        )
        batch_op.create_index("ix_jobs_batch_line", ["batch_id", "batch_line"])
        batch_op.create_index("ix_jobs_batch_status", ["batch_id", "status"])
    _create_files()
    _create_batches()


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _timestamp(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, schemas.tables.UTCDateTime(timezone=True), nullable=nullable)


def _create_files() -> None:
    op.create_table(
        "files",
        sa.Column("id", _string(40), nullable=False),
        sa.Column("tenant_id", _string(40), nullable=False),
        sa.Column("purpose", _string(32), nullable=False),
        sa.Column("filename", _string(512), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("batch_id", _string(40), nullable=True),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_files_tenant_created", "files", ["tenant_id", "created_at"])
    op.create_table(
        "file_contents",
        sa.Column("file_id", _string(40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
        ),
        sa.PrimaryKeyConstraint("file_id"),
    )


def _create_batches() -> None:
    op.create_table(
        "batches",
        sa.Column("id", _string(40), nullable=False),
        sa.Column("tenant_id", _string(40), nullable=False),
        sa.Column("tier", _string(64), nullable=False),
        sa.Column("endpoint", _string(64), nullable=False),
        sa.Column("completion_window", _string(8), nullable=False),
        sa.Column("status", _string(16), nullable=False),
        sa.Column("input_file_id", _string(40), nullable=True),
        sa.Column("output_file_id", _string(40), nullable=True),
        sa.Column("error_file_id", _string(40), nullable=True),
        sa.Column("callback_url", _string(2048), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("invalid_lines", JSON, nullable=False),
        *(
            _timestamp(name)
            for name in (
                "in_progress_at",
                "finalizing_at",
                "completed_at",
                "failed_at",
                "cancelling_at",
                "cancelled_at",
                "expires_at",
                "expired_at",
            )
        ),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batches_tenant_created", "batches", ["tenant_id", "created_at"])
    op.create_index("ix_batches_status", "batches", ["status"])


def downgrade() -> None:
    op.drop_table("batches")
    op.drop_table("file_contents")
    op.drop_table("files")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_batch_status")
        batch_op.drop_index("ix_jobs_batch_line")
        for column in ("completion_window", "custom_id", "batch_line", "batch_id", "kind"):
            batch_op.drop_column(column)
