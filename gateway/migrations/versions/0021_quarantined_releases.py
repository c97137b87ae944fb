"""quarantined releases: when, why and by whom a release was quarantined

Revision ID: 0021_quarantined_releases
Revises: 0020_yanked_releases
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.db.types

revision: str = "0021_quarantined_releases"
down_revision: str | None = "0020_yanked_releases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(
            sa.Column("quarantined_at", gateway.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("quarantine_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("quarantined_by", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("quarantined_by")
        batch.drop_column("quarantine_reason")
        batch.drop_column("quarantined_at")
