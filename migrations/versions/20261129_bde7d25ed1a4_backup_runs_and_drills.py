"""Backup runs and recovery-drill reports, as admins see them.

Revision ID: bde7d25ed1a4
Revises: fa8e80bfeabb
Create Date: 2026-11-29 18:23:51.374373

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bde7d25ed1a4'
down_revision = 'fa8e80bfeabb'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('backup_drills',
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('backup_id', sa.String(length=64), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("status IN ('passed', 'failed')", name=op.f('ck_backup_drills_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_drills')),
    sa.UniqueConstraint('public_id', name=op.f('uq_backup_drills_public_id'))
    )
    op.create_table('backup_runs',
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('key', sa.String(length=300), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f('ck_backup_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_runs')),
    sa.UniqueConstraint('public_id', name=op.f('uq_backup_runs_public_id'))
    )


def downgrade():
    op.drop_table('backup_runs')
    op.drop_table('backup_drills')
