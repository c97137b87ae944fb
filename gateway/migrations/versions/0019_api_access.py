"""api_access: service accounts, and the API use inference services report

Revision ID: 0019_api_access
Revises: 0018_public_uses
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.db.types

revision: str = "0019_api_access"
down_revision: str | None = "0018_public_uses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("is_service", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "api_usage_events",
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("flagged", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["grant_id"], ["grants.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["service_id"], ["accounts.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("service_id", "event_id"),
    )
    op.create_index(
        "ix_api_usage_release_at", "api_usage_events", ["release_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_api_usage_release_at", table_name="api_usage_events")
    op.drop_table("api_usage_events")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("is_service")
