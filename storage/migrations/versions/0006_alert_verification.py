"""alerts keep why their fire was confirmed (temporal verification's verdict)

Revision ID: 0006_alert_verification
Revises: 0005_stored_snapshots
Create Date: 2026-12-01 00:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_alert_verification'
down_revision = '0005_stored_snapshots'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('verification')
