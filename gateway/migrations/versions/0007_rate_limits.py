"""rate limits: attempts per rule, subject and window, shared by every process

Revision ID: 0007_rate_limits
Revises: 0006_webhook_endpoints
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_rate_limits'
down_revision: str | None = '0006_webhook_endpoints'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rate_limits',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('period', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('not_before', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'subject', 'period')
    )
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.create_index('ix_rate_limits_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_limits_expires_at')

    op.drop_table('rate_limits')
