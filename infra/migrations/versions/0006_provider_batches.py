"""provider batches: batch-lane jobs sent through a provider's Batch API

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import schemas.tables

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'provider_batches',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('lines', sa.Integer(), nullable=False),
        sa.Column('bytes', sa.Integer(), nullable=False),
        sa.Column('send_attempts', sa.Integer(), nullable=False),
        sa.Column('input_file_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('remote_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('remote_status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('error_message', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('created_at', schemas.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column('submitted_at', schemas.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', schemas.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', schemas.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('provider_batches') as batch_op:
        batch_op.create_index('ix_provider_batches_status', ['status', 'updated_at'])
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.add_column(
            sa.Column('provider_batch_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
        batch_op.create_index('ix_jobs_provider_batch_id', ['provider_batch_id'])


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.drop_index('ix_jobs_provider_batch_id')
        batch_op.drop_column('provider_batch_id')
    with op.batch_alter_table('provider_batches') as batch_op:
        batch_op.drop_index('ix_provider_batches_status')
    op.drop_table('provider_batches')
