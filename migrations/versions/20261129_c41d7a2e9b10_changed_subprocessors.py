"""A list version may announce a change to an active sub-processor (new locations, purpose
or data), not only an addition, replacement or removal.

Revision ID: c41d7a2e9b10
Revises: bde7d25ed1a4
Create Date: 2026-11-29 18:55:00

"""
from alembic import op


revision = 'c41d7a2e9b10'
down_revision = 'bde7d25ed1a4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subprocessor_list_versions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_subprocessor_list_versions_change'), type_='check')
        batch_op.create_check_constraint(
            'change', "change IN ('added', 'replaced', 'changed', 'removed')"
        )


def downgrade():
    op.execute("DELETE FROM subprocessor_list_versions WHERE change = 'changed'")
    with op.batch_alter_table('subprocessor_list_versions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_subprocessor_list_versions_change'), type_='check')
        batch_op.create_check_constraint('change', "change IN ('added', 'replaced', 'removed')")
