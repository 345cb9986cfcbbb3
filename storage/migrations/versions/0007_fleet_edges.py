"""the edges of a fleet and their heartbeats

Revision ID: 0007_fleet_edges
Revises: 0006_alert_verification
Create Date: 2026-12-01 02:40:00
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0007_fleet_edges'
down_revision = '0006_alert_verification'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('edges',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('started_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('last_seen', storage.models.UTCDateTime(), nullable=False),
    sa.Column('cameras', sa.JSON(), nullable=False),
    sa.Column('quiet_since', storage.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('edges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_edges_last_seen'), ['last_seen'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('edges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_edges_last_seen'))
    op.drop_table('edges')
