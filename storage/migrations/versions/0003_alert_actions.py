"""alert action history; snoozes remember when and from which alert

Revision ID: 0003_alert_actions
Revises: 0002
Create Date: 2026-12-01 00:05:00
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0003_alert_actions'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=True),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_actions_alert_id'), ['alert_id'], unique=False)
    with op.batch_alter_table('snoozes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('at', storage.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('alert_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('snoozes', schema=None) as batch_op:
        batch_op.drop_column('alert_id')
        batch_op.drop_column('at')
    with op.batch_alter_table('alert_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_actions_alert_id'))
    op.drop_table('alert_actions')
