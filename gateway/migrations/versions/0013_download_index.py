"""downloads: an artifact's downloads since a time, through one index

Revision ID: 0013_download_index
Revises: 0012_evidence_indexes

The download gates of `gateway stage status` and of promotion count a release's
downloads since it entered its stage: by artifact and start time. The only index began
with the grant, so that count read the whole table, which grows by a row per download.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0013_download_index'
down_revision: str | None = '0012_evidence_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('downloads', schema=None) as batch_op:
        batch_op.create_index(
            'ix_downloads_artifact_started', ['artifact_id', 'started_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('downloads', schema=None) as batch_op:
        batch_op.drop_index('ix_downloads_artifact_started')
