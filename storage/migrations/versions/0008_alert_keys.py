"""alerts carry an idempotent key (edge/camera/uuid): a replayed spool cannot duplicate one;
deliveries are indexed by recipient and status for the outbox claim; the arm state row exists from the start

Revision ID: 0008_alert_keys
Revises: 0007_fleet_edges
Create Date: 2026-12-01 02:40:00
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0008_alert_keys'
down_revision = '0007_fleet_edges'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=255), nullable=True))
    # Several NULLs (alerts from before keys) are allowed by both databases' unique indexes.
    op.create_index('uq_alerts_key', 'alerts', ['key'], unique=True)
    # A fleet's bot claims deliveries from many edges' alerts: each claim asks whether the
    # recipient has an earlier one unsettled (bench/fleet.py: from a scan of every pending row
    # per claim to an index probe).
    op.create_index('ix_deliveries_recipient_status', 'deliveries', ['channel', 'chat_id', 'status', 'id'])
    # The arm state's one row exists from the start: edges that read it for the first time at
    # once (a new fleet) would otherwise race to create it, and all but one fail.
    arm_state = sa.table('arm_state', sa.column('id', sa.Integer), sa.column('armed', sa.Boolean),
                         sa.column('changed_at', storage.models.UTCDateTime()))
    if op.get_bind().execute(sa.select(arm_state.c.id).where(arm_state.c.id == 1)).first() is None:
        op.bulk_insert(arm_state, [{'id': 1, 'armed': True, 'changed_at': datetime.now(timezone.utc)}])


def downgrade() -> None:
    op.drop_index('ix_deliveries_recipient_status', table_name='deliveries')
    op.drop_index('uq_alerts_key', table_name='alerts')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('key')
