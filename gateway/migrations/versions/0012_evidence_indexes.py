"""evidence: an account's rows of one kind through one index

Revision ID: 0012_evidence_indexes
Revises: 0011_change_notices

The trigger re-check reads an account's `trigger.fired` rows. Through the old index on
`account_id` alone it read every row of the account, and an account that downloads
writes a row per URL and per request: millions. `(account_id, kind)` finds the few rows
of one kind directly, and serves everything `account_id` alone did (the foreign key's
checks included), so that index goes: one fewer index for every evidence insert to keep.

Building the index reads the whole table once and holds off evidence writes meanwhile
(about half a minute per 10 million rows on two cores).
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0012_evidence_indexes'
down_revision: str | None = '0011_change_notices'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_account_kind', ['account_id', 'kind'], unique=False)
        batch_op.drop_index('ix_evidence_account_id')


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_account_id', ['account_id'], unique=False)
        batch_op.drop_index('ix_evidence_account_kind')
