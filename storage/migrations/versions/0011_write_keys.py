"""camera events and notices carry an idempotent key, like alerts: a spooled write replayed
twice (an edge killed mid-replay) is found rather than stored and sent again

Revision ID: 0011_write_keys
Revises: 0009_alert_clips
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_write_keys'
down_revision = '0009_alert_clips'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('camera_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=255), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_key', sa.String(length=255), nullable=True))
    # Several NULLs (events and messages without a key) are allowed by both databases.
    op.create_index('uq_camera_events_key', 'camera_events', ['key'], unique=True)
    op.create_index('uq_deliveries_notice', 'deliveries', ['notice_key', 'chat_id'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_deliveries_notice', table_name='deliveries')
    op.drop_index('uq_camera_events_key', table_name='camera_events')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('notice_key')
    with op.batch_alter_table('camera_events', schema=None) as batch_op:
        batch_op.drop_column('key')
