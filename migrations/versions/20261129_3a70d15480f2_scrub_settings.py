"""Per-account scrubber settings: opt-in entities, custom patterns, deny and allow lists.

Revision ID: 3a70d15480f2
Revises: 6b2e6964df27
Create Date: 2026-11-29 16:14:42.797705

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3a70d15480f2'
down_revision = '6b2e6964df27'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scrub_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('entities', sa.JSON(), nullable=False),
    sa.Column('patterns', sa.JSON(), nullable=False),
    sa.Column('deny', sa.JSON(), nullable=False),
    sa.Column('allow', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_scrub_settings_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scrub_settings')),
    sa.UniqueConstraint('account_id', name=op.f('uq_scrub_settings_account_id'))
    )


def downgrade():
    op.drop_table('scrub_settings')
