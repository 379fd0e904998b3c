"""webhook repair: deliveries name their job, and jobs are found by when they ended

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.create_index("ix_webhook_deliveries_job", ["job_id"])
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.create_index("ix_jobs_finished", ["finished_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_finished")
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_job")
        batch_op.drop_column("job_id")
