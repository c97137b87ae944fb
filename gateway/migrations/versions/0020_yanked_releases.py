"""yanked releases: when, why and by whom a release was yanked

Revision ID: 0020_yanked_releases
Revises: 0019_api_access
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.db.types

revision: str = "0020_yanked_releases"
down_revision: str | None = "0019_api_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(
            sa.Column("yanked_at", gateway.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("yanked_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("yanked_by", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("yanked_by")
        batch.drop_column("yanked_reason")
        batch.drop_column("yanked_at")
