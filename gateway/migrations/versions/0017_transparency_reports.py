"""transparency: report drafts and published reports, which stay as published

Revision ID: 0017_transparency_reports
Revises: 0016_usage_daily

Evidence of every kind but the hot paths' (downloads, URLs, refused manifests) gets a
partial index, which hot-path rows never enter: a report reads those rows alone.

A published report (published_at set) can be neither changed nor deleted: triggers
refuse it, as they refuse changes to the evidence log. Drafts may be replaced.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.db.types

revision: str = "0017_transparency_reports"
down_revision: str | None = "0016_usage_daily"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VERBS = ("UPDATE", "DELETE")
# Written out, not imported: this migration keeps meaning what it meant.
_NOT_HOT = "kind NOT IN ('download.manifest_refused', 'download.requested', 'url.issued')"


def upgrade() -> None:
    op.create_index(
        "ix_evidence_not_hot",
        "evidence",
        ["id"],
        unique=False,
        sqlite_where=sa.text(_NOT_HOT),
        postgresql_where=sa.text(_NOT_HOT),
    )
    op.create_table(
        "transparency_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("built_at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("built_by", sa.String(length=320), nullable=False),
        sa.Column("published_at", gateway.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=320), nullable=True),
        sa.Column("published_key", sa.String(length=220), nullable=True),
        sa.Column("signed_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("published_key"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for verb in _VERBS:
            op.execute(
                f"CREATE TRIGGER transparency_reports_no_{verb.lower()} BEFORE {verb} "
                "ON transparency_reports WHEN OLD.published_at IS NOT NULL "
                "BEGIN SELECT RAISE(ABORT, 'a published transparency report is kept as "
                "published'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION transparency_report_kept() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF OLD.published_at IS NOT NULL THEN "
        "RAISE EXCEPTION 'a published transparency report is kept as published'; END IF; "
        "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$"
    )
    for verb in _VERBS:
        op.execute(
            f"CREATE TRIGGER transparency_reports_no_{verb.lower()} BEFORE {verb} "
            "ON transparency_reports FOR EACH ROW EXECUTE FUNCTION transparency_report_kept()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in _VERBS:
            op.execute(f"DROP TRIGGER transparency_reports_no_{verb.lower()}")
    else:
        for verb in _VERBS:
            op.execute(
                f"DROP TRIGGER transparency_reports_no_{verb.lower()} ON transparency_reports"
            )
        op.execute("DROP FUNCTION transparency_report_kept()")
    op.drop_table("transparency_reports")
    op.drop_index("ix_evidence_not_hot", table_name="evidence")
