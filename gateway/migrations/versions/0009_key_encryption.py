"""URL signing keys are kept sealed with a key-encryption key

Revision ID: 0009_key_encryption
Revises: 0008_sessions

The column is renamed and keeps its rows: sealing them needs the key-encryption key,
which is not in the database and not known to a migration, so the gateway seals every
plaintext row at start (`gateway serve`, and any command that signs), once: a sealed
row is left as it is. Downgrading renames the column back; rows sealed by then are not
PEM, so the older code would need `gateway keys rotate-url-signing` run on it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009_key_encryption'
down_revision: str | None = '0008_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('url_signing_keys') as batch:
        batch.alter_column('private_pem', new_column_name='sealed_private_key')


def downgrade() -> None:
    with op.batch_alter_table('url_signing_keys') as batch:
        batch.alter_column('sealed_private_key', new_column_name='private_pem')
