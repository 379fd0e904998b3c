"""known queries: requests precomputed off-peak into the exact cache

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import schemas.tables

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('known_queries',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('cache_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('every_s', sa.Integer(), nullable=True),
    sa.Column('cron', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('ttl_s', sa.Integer(), nullable=False),
    sa.Column('window_start', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('window_end', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('next_run_at', schemas.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_run_at', schemas.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_job_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('created_at', schemas.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', schemas.tables.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'cache_key', name='uq_known_queries_tenant_key')
    )
    with op.batch_alter_table('known_queries', schema=None) as batch_op:
        batch_op.create_index('ix_known_queries_due', ['enabled', 'next_run_at'], unique=False)
        batch_op.create_index('ix_known_queries_tenant_created', ['tenant_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('known_queries', schema=None) as batch_op:
        batch_op.drop_index('ix_known_queries_tenant_created')
        batch_op.drop_index('ix_known_queries_due')

    op.drop_table('known_queries')
