"""Status columns hold only the statuses of the stages/ tables

Revision ID: 0010_state_columns
Revises: 0009_key_encryption

Every status column gets a CHECK constraint, ck_<table>_<column>, listing the statuses
its stages/ enum names, so a status the core does not know cannot be written however the
row is written. Rows already written keep their status when it is a known one; before
the constraint is added, a value written in another case or with spaces around it is
normalised, a few older words are given their present name, and any other value is
mapped to the status that gives nothing away and can be undone by an operator (a grant
or account suspended, a release recalled, an incident reported, an appeal pending, an
outbox message failed, an application expired). The lists are written out here, not
imported, so this migration keeps meaning what it meant when the enums change.

SQLite adds a CHECK constraint only by rebuilding the table (batch mode); the
environment turns foreign-key enforcement off during migrations on SQLite, so that the
rebuild does not cascade to the rows that refer to the rebuilt table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_state_columns'
down_revision: str | None = '0009_key_encryption'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RELEASE = ('active', 'recalled', 'decommissioned')
_ACCOUNT = ('active', 'suspended', 'terminated')
_GRANT = ('active', 'suspended', 'revoked', 'expired')
_APPLICATION = (
    'submitted',
    'under_review',
    'changes_requested',
    'approved',
    'denied',
    'withdrawn',
    'expired',
)
_INCIDENT = ('reported', 'triaged', 'confirmed', 'dismissed', 'resolved')
_APPEAL = ('pending', 'upheld', 'overturned')
_EMAIL = ('pending', 'sending', 'sent', 'failed', 'skipped', 'digest', 'digested')
_WEBHOOK = ('pending', 'sending', 'delivered', 'failed')

# (table, column, statuses, older words and what they are now, the status for anything else)
_COLUMNS: tuple[tuple[str, str, tuple[str, ...], dict[str, str], str], ...] = (
    ('accounts', 'status', _ACCOUNT, {'disabled': 'suspended', 'banned': 'terminated'}, 'suspended'),
    ('releases', 'status', _RELEASE, {'retired': 'decommissioned'}, 'recalled'),
    ('stage_changes', 'from_status', _RELEASE, {'retired': 'decommissioned'}, 'recalled'),
    ('stage_changes', 'to_status', _RELEASE, {'retired': 'decommissioned'}, 'recalled'),
    ('grants', 'status', _GRANT, {'ended': 'expired', 'cancelled': 'revoked'}, 'suspended'),
    ('notifications', 'email_status', _EMAIL, {'delivered': 'sent', 'error': 'failed'}, 'failed'),
    ('webhook_deliveries', 'status', _WEBHOOK, {'sent': 'delivered', 'error': 'failed'}, 'failed'),
    (
        'applications',
        'status',
        _APPLICATION,
        {'pending': 'submitted', 'rejected': 'denied', 'cancelled': 'withdrawn'},
        'expired',
    ),
    (
        'application_events',
        'from_status',
        _APPLICATION,
        {'pending': 'submitted', 'rejected': 'denied', 'cancelled': 'withdrawn'},
        'expired',
    ),
    (
        'application_events',
        'to_status',
        _APPLICATION,
        {'pending': 'submitted', 'rejected': 'denied', 'cancelled': 'withdrawn'},
        'expired',
    ),
    ('incidents', 'status', _INCIDENT, {'open': 'reported', 'closed': 'resolved'}, 'reported'),
    ('incident_events', 'from_status', _INCIDENT, {'open': 'reported', 'closed': 'resolved'}, 'reported'),
    ('incident_events', 'to_status', _INCIDENT, {'open': 'reported', 'closed': 'resolved'}, 'reported'),
    ('appeals', 'status', _APPEAL, {'rejected': 'upheld', 'granted': 'overturned'}, 'pending'),
)


def _name(table: str, column: str) -> str:
    return f'ck_{table}_{column}'


def _keep_the_data(table: str, column: str, statuses: tuple[str, ...], older: dict[str, str], other: str) -> None:
    rows = sa.table(table, sa.column(column, sa.String))
    value = rows.c[column]
    # A NULL (a first event's from_status) is no status and stays as it is.
    op.execute(
        rows.update()
        .where(value.is_not(None), value.not_in(statuses))
        .values({column: sa.func.lower(sa.func.trim(value))})
    )
    for old, new in older.items():
        op.execute(rows.update().where(value == old).values({column: new}))
    op.execute(rows.update().where(value.is_not(None), value.not_in(statuses)).values({column: other}))


def upgrade() -> None:
    tables: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for table, column, statuses, older, other in _COLUMNS:
        _keep_the_data(table, column, statuses, older, other)
        tables.setdefault(table, []).append((column, statuses))
    for table, columns in tables.items():
        with op.batch_alter_table(table) as batch:
            for column, statuses in columns:
                listed = ', '.join(f"'{status}'" for status in statuses)
                batch.create_check_constraint(_name(table, column), f'{column} IN ({listed})')


def downgrade() -> None:
    tables: dict[str, list[str]] = {}
    for table, column, _, _, _ in _COLUMNS:
        tables.setdefault(table, []).append(column)
    for table, columns in tables.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(_name(table, column), type_='check')
