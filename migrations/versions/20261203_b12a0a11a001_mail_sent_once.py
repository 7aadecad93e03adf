"""Queued mail is sent effectively once: each message records its state (pending, sent,
failed), its tries, its last error and when it was sent.

Revision ID: b12a0a11a001
Revises: b12e0e5f0002
Create Date: 2026-12-03 12:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b12a0a11a001'
down_revision = 'b12e0e5f0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('queued_mail', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('state', sa.String(length=16), server_default='pending', nullable=False)
        )
        batch_op.add_column(
            sa.Column('attempts', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.add_column(sa.Column('last_error', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_queued_mail_sent_at'), ['sent_at'], unique=False)
        batch_op.create_check_constraint(
            'state', "state IN ('pending', 'sent', 'failed')"
        )


def downgrade():
    with op.batch_alter_table('queued_mail', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_queued_mail_state'), type_='check')
        batch_op.drop_index(batch_op.f('ix_queued_mail_sent_at'))
        batch_op.drop_column('sent_at')
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
        batch_op.drop_column('state')
