"""alerts keep their onset clip; a delivery remembers that a try of it may have arrived unseen

Revision ID: 0009_alert_clips
Revises: 0008_alert_keys
Create Date: 2026-12-01 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_alert_clips'
down_revision = '0008_alert_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clip_path', sa.String(length=512), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_doubt', sa.Boolean(), nullable=False, server_default=sa.text('false')))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('in_doubt')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('clip_path')
