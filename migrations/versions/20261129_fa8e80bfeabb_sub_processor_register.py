"""The sub-processor register: sub-processors, safeguards, DPAs, field history, list versions,
notices to accounts, objections, customers' webhooks.

Revision ID: fa8e80bfeabb
Revises: 553fd8e27001
Create Date: 2026-11-29 18:18:02.721873

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'fa8e80bfeabb'
down_revision = '553fd8e27001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subprocessors',
    sa.Column('legal_name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=320), nullable=False),
    sa.Column('website', sa.String(length=500), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('data_categories', sa.JSON(), nullable=False),
    sa.Column('subject_categories', sa.JSON(), nullable=False),
    sa.Column('locations', sa.JSON(), nullable=False),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('review_due', sa.Date(), nullable=True),
    sa.Column('dpf_certified', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('example', sa.Boolean(), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'active', 'retired')", name=op.f('ck_subprocessors_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessors')),
    sa.UniqueConstraint('legal_name', name=op.f('uq_subprocessors_legal_name')),
    sa.UniqueConstraint('public_id', name=op.f('uq_subprocessors_public_id'))
    )
    op.create_table('subprocessor_dpas',
    sa.Column('subprocessor_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=50), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('document_key', sa.String(length=300), nullable=True),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['subprocessor_id'], ['subprocessors.id'], name=op.f('fk_subprocessor_dpas_subprocessor_id_subprocessors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_dpas')),
    sa.UniqueConstraint('public_id', name=op.f('uq_subprocessor_dpas_public_id')),
    sa.UniqueConstraint('subprocessor_id', 'version', name=op.f('uq_subprocessor_dpas_subprocessor_id_version'))
    )
    with op.batch_alter_table('subprocessor_dpas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_dpas_subprocessor_id'), ['subprocessor_id'], unique=False)

    op.create_table('subprocessor_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subprocessor_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('old', sa.JSON(), nullable=True),
    sa.Column('new', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['subprocessor_id'], ['subprocessors.id'], name=op.f('fk_subprocessor_history_subprocessor_id_subprocessors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_history'))
    )
    with op.batch_alter_table('subprocessor_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_history_subprocessor_id'), ['subprocessor_id'], unique=False)

    op.create_table('subprocessor_list_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('subprocessor_id', sa.Integer(), nullable=False),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.Column('announced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notice', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.CheckConstraint("change IN ('added', 'replaced', 'removed')", name=op.f('ck_subprocessor_list_versions_change')),
    sa.ForeignKeyConstraint(['replaces_id'], ['subprocessors.id'], name=op.f('fk_subprocessor_list_versions_replaces_id_subprocessors'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subprocessor_id'], ['subprocessors.id'], name=op.f('fk_subprocessor_list_versions_subprocessor_id_subprocessors'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_list_versions')),
    sa.UniqueConstraint('number', name=op.f('uq_subprocessor_list_versions_number'))
    )
    with op.batch_alter_table('subprocessor_list_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_list_versions_subprocessor_id'), ['subprocessor_id'], unique=False)

    op.create_table('subprocessor_safeguards',
    sa.Column('subprocessor_id', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('scc_module', sa.Integer(), nullable=True),
    sa.Column('decision', sa.String(length=200), nullable=True),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('document_key', sa.String(length=300), nullable=True),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("kind IN ('scc', 'bcr')", name=op.f('ck_subprocessor_safeguards_kind')),
    sa.CheckConstraint('scc_module IS NULL OR scc_module BETWEEN 1 AND 4', name=op.f('ck_subprocessor_safeguards_scc_module')),
    sa.ForeignKeyConstraint(['subprocessor_id'], ['subprocessors.id'], name=op.f('fk_subprocessor_safeguards_subprocessor_id_subprocessors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_safeguards')),
    sa.UniqueConstraint('public_id', name=op.f('uq_subprocessor_safeguards_public_id'))
    )
    with op.batch_alter_table('subprocessor_safeguards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_safeguards_subprocessor_id'), ['subprocessor_id'], unique=False)

    op.create_table('subprocessor_webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret_ct', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_subprocessor_webhooks_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_webhooks')),
    sa.UniqueConstraint('account_id', name=op.f('uq_subprocessor_webhooks_account_id'))
    )
    with op.batch_alter_table('subprocessor_webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_webhooks_account_id'), ['account_id'], unique=False)

    op.create_table('subprocessor_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_version_id', sa.Integer(), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('webhook_state', sa.String(length=16), nullable=True),
    sa.Column('webhook_attempts', sa.Integer(), nullable=False),
    sa.Column('webhook_error', sa.String(length=200), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_subprocessor_notices_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['list_version_id'], ['subprocessor_list_versions.id'], name=op.f('fk_subprocessor_notices_list_version_id_subprocessor_list_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_notices')),
    sa.UniqueConstraint('account_id', 'list_version_id', name=op.f('uq_subprocessor_notices_account_id_list_version_id'))
    )
    with op.batch_alter_table('subprocessor_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_notices_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subprocessor_notices_list_version_id'), ['list_version_id'], unique=False)

    op.create_table('subprocessor_objections',
    sa.Column('list_version_id', sa.Integer(), nullable=False),
    sa.Column('subprocessor_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("state IN ('open', 'resolved')", name=op.f('ck_subprocessor_objections_state')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_subprocessor_objections_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['list_version_id'], ['subprocessor_list_versions.id'], name=op.f('fk_subprocessor_objections_list_version_id_subprocessor_list_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subprocessor_id'], ['subprocessors.id'], name=op.f('fk_subprocessor_objections_subprocessor_id_subprocessors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subprocessor_objections')),
    sa.UniqueConstraint('account_id', 'list_version_id', name=op.f('uq_subprocessor_objections_account_id_list_version_id')),
    sa.UniqueConstraint('public_id', name=op.f('uq_subprocessor_objections_public_id'))
    )
    with op.batch_alter_table('subprocessor_objections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subprocessor_objections_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subprocessor_objections_subprocessor_id'), ['subprocessor_id'], unique=False)



def downgrade():
    with op.batch_alter_table('subprocessor_objections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_objections_subprocessor_id'))
        batch_op.drop_index(batch_op.f('ix_subprocessor_objections_account_id'))

    op.drop_table('subprocessor_objections')
    with op.batch_alter_table('subprocessor_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_notices_list_version_id'))
        batch_op.drop_index(batch_op.f('ix_subprocessor_notices_account_id'))

    op.drop_table('subprocessor_notices')
    with op.batch_alter_table('subprocessor_webhooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_webhooks_account_id'))

    op.drop_table('subprocessor_webhooks')
    with op.batch_alter_table('subprocessor_safeguards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_safeguards_subprocessor_id'))

    op.drop_table('subprocessor_safeguards')
    with op.batch_alter_table('subprocessor_list_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_list_versions_subprocessor_id'))

    op.drop_table('subprocessor_list_versions')
    with op.batch_alter_table('subprocessor_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_history_subprocessor_id'))

    op.drop_table('subprocessor_history')
    with op.batch_alter_table('subprocessor_dpas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subprocessor_dpas_subprocessor_id'))

    op.drop_table('subprocessor_dpas')
    op.drop_table('subprocessors')
