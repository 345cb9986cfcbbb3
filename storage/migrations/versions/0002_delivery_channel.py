"""deliveries know their channel; alert updates named for what changed, not for Telegram

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Update kinds: what changed in the alert, not which Telegram call shows it.
_KINDS = {"alert-photo": "alert-snapshot", "alert-caption": "alert-state"}
_FIRST_MESSAGE = sa.text("kind = 'alert'")


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=16), server_default='telegram', nullable=False))
        batch_op.alter_column('telegram_message_id', new_column_name='message_id',
                              existing_type=sa.BigInteger(), existing_nullable=True)
        batch_op.drop_index('uq_deliveries_first_photo', sqlite_where=_FIRST_MESSAGE, postgresql_where=_FIRST_MESSAGE)
        batch_op.create_index('uq_deliveries_first_message', ['channel', 'alert_id', 'chat_id'], unique=True,
                              sqlite_where=_FIRST_MESSAGE, postgresql_where=_FIRST_MESSAGE)
    _rename_kinds(_KINDS)


def downgrade() -> None:
    _rename_kinds({new: old for old, new in _KINDS.items()})
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('uq_deliveries_first_message', sqlite_where=_FIRST_MESSAGE, postgresql_where=_FIRST_MESSAGE)
        batch_op.create_index('uq_deliveries_first_photo', ['alert_id', 'chat_id'], unique=True,
                              sqlite_where=_FIRST_MESSAGE, postgresql_where=_FIRST_MESSAGE)
        batch_op.alter_column('message_id', new_column_name='telegram_message_id',
                              existing_type=sa.BigInteger(), existing_nullable=True)
        batch_op.drop_column('channel')


def _rename_kinds(names: dict[str, str]) -> None:
    deliveries = sa.table('deliveries', sa.column('kind', sa.String))
    for old, new in names.items():
        op.execute(deliveries.update().where(deliveries.c.kind == old).values(kind=new))
