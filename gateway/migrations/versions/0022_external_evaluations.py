"""external evaluations: evidence attachments an external evaluator submitted

Revision ID: 0022_external_evaluations
Revises: 0021_quarantined_releases
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_external_evaluations"
down_revision: str | None = "0021_quarantined_releases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_attachments") as batch:
        batch.add_column(
            sa.Column("external", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("evidence_attachments") as batch:
        batch.drop_column("external")
