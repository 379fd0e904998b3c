"""batches: job kinds and batch membership (batch and file tables come with the Batches API)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='chat'))
        batch_op.add_column(sa.Column('batch_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('batch_line', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('custom_id', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True))
        batch_op.add_column(sa.Column('completion_window', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.create_index('ix_jobs_batch_line', ['batch_id', 'batch_line'])


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch_op:
        batch_op.drop_index('ix_jobs_batch_line')
        for column in ('completion_window', 'custom_id', 'batch_line', 'batch_id', 'kind'):
            batch_op.drop_column(column)
