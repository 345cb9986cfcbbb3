"""alert snapshots kept in the database, readable by every process of a fleet

Revision ID: 0005_stored_snapshots
Revises: 0004_ignore_zones
Create Date: 2026-12-01 00:40:00
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0005_stored_snapshots'
down_revision = '0004_ignore_zones'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint(f'length(data) <= {storage.models.SNAPSHOT_MAX_BYTES}', name='ck_snapshots_size'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_snapshots_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshots_created_at'))
    op.drop_table('snapshots')
