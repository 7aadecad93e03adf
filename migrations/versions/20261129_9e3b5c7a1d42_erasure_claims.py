"""Erasures are worked in batches: a request records until when a worker has claimed it.

Revision ID: 9e3b5c7a1d42
Revises: c41d7a2e9b10
Create Date: 2026-11-29 21:15:00

"""
import sqlalchemy as sa
from alembic import op

revision = '9e3b5c7a1d42'
down_revision = 'c41d7a2e9b10'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dsr_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('dsr_requests', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
