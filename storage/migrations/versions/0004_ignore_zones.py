"""ignore zones added from Telegram; alerts keep their box so that one can become a zone

Revision ID: 0004_ignore_zones
Revises: 0003_alert_actions
Create Date: 2026-12-01 00:30:00
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0004_ignore_zones'
down_revision = '0003_alert_actions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ignore_zones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera', sa.String(length=128), nullable=False),
    sa.Column('points', sa.JSON(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ignore_zones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ignore_zones_camera'), ['camera'], unique=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('box', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('box')
    with op.batch_alter_table('ignore_zones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ignore_zones_camera'))
    op.drop_table('ignore_zones')
