"""public_uses: applicants' consent to list an approved use publicly, and its withdrawal

Revision ID: 0018_public_uses
Revises: 0017_transparency_reports
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.db.types

revision: str = "0018_public_uses"
down_revision: str | None = "0017_transparency_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_uses",
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("project_title", sa.String(length=200), nullable=False),
        sa.Column("use_statement", sa.Text(), nullable=False),
        sa.Column("consented_at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", gateway.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("application_id"),
    )
    op.create_index("ix_public_uses_withdrawn", "public_uses", ["withdrawn_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_public_uses_withdrawn", table_name="public_uses")
    op.drop_table("public_uses")
