"""webhooks: endpoints, the tenant's default secret for callback URLs, and deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import schemas.tables

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _time() -> schemas.tables.UTCDateTime:
    return schemas.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('id', _string(40), nullable=False),
    sa.Column('tenant_id', _string(40), nullable=False),
    sa.Column('url', _string(2048), nullable=False),
    sa.Column('event_types', JSON, nullable=False),
    sa.Column('description', _string(500), nullable=False),
    sa.Column('secret', _string(100), nullable=False),
    sa.Column('previous_secret', _string(100), nullable=True),
    sa.Column('previous_secret_expires_at', _time(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', _string(200), nullable=True),
    sa.Column('disabled_at', _time(), nullable=True),
    sa.Column('failing_since', _time(), nullable=True),
    sa.Column('created_at', _time(), nullable=False),
    sa.Column('updated_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_endpoints_tenant_created', 'webhook_endpoints', ['tenant_id', 'created_at'])
    op.create_table('tenant_webhook_secrets',
    sa.Column('tenant_id', _string(40), nullable=False),
    sa.Column('secret', _string(100), nullable=False),
    sa.Column('previous_secret', _string(100), nullable=True),
    sa.Column('previous_secret_expires_at', _time(), nullable=True),
    sa.Column('created_at', _time(), nullable=False),
    sa.Column('updated_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id'),
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', _string(40), nullable=False),
    sa.Column('tenant_id', _string(40), nullable=False),
    sa.Column('event_id', _string(40), nullable=False),
    sa.Column('event_type', _string(64), nullable=False),
    sa.Column('endpoint_id', _string(40), nullable=True),
    sa.Column('url', _string(2048), nullable=False),
    sa.Column('dedupe_key', _string(90), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', _string(16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', _time(), nullable=True),
    sa.Column('last_attempt_at', _time(), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', _string(500), nullable=True),
    sa.Column('last_response_ms', sa.Float(), nullable=True),
    sa.Column('created_at', _time(), nullable=False),
    sa.Column('updated_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key', name='uq_webhook_deliveries_dedupe'),
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_deliveries_tenant_created', 'webhook_deliveries', ['tenant_id', 'created_at'])
    op.create_index(
        'ix_webhook_deliveries_endpoint_created', 'webhook_deliveries', ['endpoint_id', 'created_at']
    )


def downgrade() -> None:
    op.drop_table('webhook_deliveries')
    op.drop_table('tenant_webhook_secrets')
    op.drop_table('webhook_endpoints')
