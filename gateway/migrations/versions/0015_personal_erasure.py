"""evidence: personal fields may be erased, and nothing else changed

Revision ID: 0015_personal_erasure
Revises: 0014_evidence_log

Evidence stays append-only, with one exception: a row's personal fields (client address,
user agent, email) may be set to null, for the policy's retention of personal data. The
guard refuses any other change, the same fields set to anything but null included. The
evidence log still verifies: its leaves commit to a salted hash of those fields, and the
salt is erased with them: a leaf's salt may be set to null, and to nothing else. A
partial index finds the leaves whose salt is still kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_personal_erasure"
down_revision: str | None = "0014_evidence_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: this migration keeps meaning what it meant.
_PERSONAL = ("client_address", "user_agent", "email")
_SAME = ("id", "at", "kind", "actor", "model_id", "release_id", "account_id")


def upgrade() -> None:
    with op.batch_alter_table("evidence_leaves", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evidence_leaves_personal",
            ["leaf_index"],
            unique=False,
            sqlite_where=sa.text("personal_salt IS NOT NULL"),
            postgresql_where=sa.text("personal_salt IS NOT NULL"),
        )
    if op.get_bind().dialect.name == "sqlite":
        paths = ", ".join(f"'$.{name}'" for name in _PERSONAL)
        erased_only = " AND ".join(
            [
                *(f"NEW.{column} IS OLD.{column}" for column in _SAME),
                f"json_remove(NEW.data, {paths}) = json_remove(OLD.data, {paths})",
                *(f"json_extract(NEW.data, '$.{name}') IS NULL" for name in _PERSONAL),
            ]
        )
        op.execute("DROP TRIGGER evidence_no_update")
        op.execute(
            f"CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence WHEN NOT ({erased_only}) "
            "BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER evidence_leaves_salt_erased_only BEFORE UPDATE OF personal_salt "
            "ON evidence_leaves WHEN NEW.personal_salt IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'evidence_leaves is append-only'); END"
        )
        return
    names = ", ".join(f"'{name}'" for name in _PERSONAL)
    erased_only = " AND ".join(
        [
            *(f"NEW.{column} IS NOT DISTINCT FROM OLD.{column}" for column in _SAME),
            f"(NEW.data::jsonb - ARRAY[{names}]) = (OLD.data::jsonb - ARRAY[{names}])",
            *(
                f"COALESCE(NEW.data::jsonb -> '{name}', 'null'::jsonb) = 'null'::jsonb"
                for name in _PERSONAL
            ),
        ]
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN IF TG_OP = 'UPDATE' AND {erased_only} THEN RETURN NEW; END IF; "
        "RAISE EXCEPTION 'evidence is append-only'; END $$"
    )
    # The function of migration 0014 refuses whatever it is called for.
    op.execute(
        "CREATE TRIGGER evidence_leaves_salt_erased_only BEFORE UPDATE OF personal_salt "
        "ON evidence_leaves FOR EACH ROW WHEN (NEW.personal_salt IS NOT NULL) "
        "EXECUTE FUNCTION evidence_log_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER evidence_leaves_salt_erased_only")
        op.execute("DROP TRIGGER evidence_no_update")
        op.execute(
            "CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence "
            "BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END"
        )
    else:
        op.execute("DROP TRIGGER evidence_leaves_salt_erased_only ON evidence_leaves")
        op.execute(
            "CREATE OR REPLACE FUNCTION evidence_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evidence is append-only'; END $$"
        )
    with op.batch_alter_table("evidence_leaves", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_leaves_personal")
