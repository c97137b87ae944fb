"""PostgreSQL tells every gateway process when what the hot paths cache changes

Revision ID: 0011_change_notices
Revises: 0010_state_columns

Each table the per-process caches read from (gateway/db/changes.py) gets a statement
trigger that sends `NOTIFY gateway_changes, '<table>'`. PostgreSQL delivers a notice once
the transaction commits, to every connection listening, and folds repeats within one
transaction, so a bulk change costs one notice per table. The key table notifies only
for the columns a decision reads: the time a key was last used changes on every use and
decides nothing. SQLite has no notifications: nothing to do there (its caches are
bounded by their time to live alone).
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0011_change_notices'
down_revision: str | None = '0010_state_columns'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: this migration keeps meaning what it meant.
_TABLES = (
    'models',
    'releases',
    'components',
    'artifacts',
    'grants',
    'accounts',
    'recalls',
    'url_signing_keys',
)
_KEY_COLUMNS = 'account_id, secret_sha256, scopes, expires_at, revoked_at'


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(
        """
        CREATE FUNCTION gateway_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('gateway_changes', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in _TABLES:
        op.execute(
            f'CREATE TRIGGER gateway_notify_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE'
            f' ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gateway_notify_change()'
        )
    op.execute(
        f'CREATE TRIGGER gateway_notify_change AFTER INSERT OR DELETE OR TRUNCATE'
        f' OR UPDATE OF {_KEY_COLUMNS}'
        ' ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION gateway_notify_change()'
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in (*_TABLES, 'api_keys'):
        op.execute(f'DROP TRIGGER gateway_notify_change ON {table}')
    op.execute('DROP FUNCTION gateway_notify_change()')
