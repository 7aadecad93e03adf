"""Sign-in links, server-side sessions, operators, support grants; members' invitations.

Revision ID: 46f631891882
Revises: 3a70d15480f2
Create Date: 2026-11-29 17:34:16.850827

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '46f631891882'
down_revision = '3a70d15480f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('operators',
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('email_index', sa.String(length=64), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('name_ct', sa.LargeBinary(), nullable=False),
    sa.Column('email_ct', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("role IN ('support', 'dpo')", name=op.f('ck_operators_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('email_index', name=op.f('uq_operators_email_index')),
    sa.UniqueConstraint('public_id', name=op.f('uq_operators_public_id'))
    )
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operators_key_id'), ['key_id'], unique=False)

    op.create_table('support_grants',
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('access', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("access IN ('read', 'write')", name=op.f('ck_support_grants_access')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_support_grants_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_support_grants_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_grants')),
    sa.UniqueConstraint('public_id', name=op.f('uq_support_grants_public_id'))
    )
    with op.batch_alter_table('support_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_support_grants_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_support_grants_operator_id'), ['operator_id'], unique=False)

    op.create_table('login_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("purpose IN ('sign_in', 'invitation')", name=op.f('ck_login_links_purpose')),
    sa.CheckConstraint('(member_id IS NULL) <> (operator_id IS NULL)', name=op.f('ck_login_links_one_person')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_login_links_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_login_links_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_links_token_hash'))
    )
    with op.batch_alter_table('login_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_links_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_links_operator_id'), ['operator_id'], unique=False)

    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.CheckConstraint("method IN ('email', 'google')", name=op.f('ck_sessions_method')),
    sa.CheckConstraint('(member_id IS NOT NULL AND operator_id IS NULL) OR member_id IS NULL', name=op.f('ck_sessions_one_person')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sessions_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['support_grants.id'], name=op.f('fk_sessions_grant_id_support_grants'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_sessions_member_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_sessions_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sessions_token_hash'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_operator_id'), ['operator_id'], unique=False)

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invited_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('joined_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('joined_at')
        batch_op.drop_column('invited_at')

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_operator_id'))
        batch_op.drop_index(batch_op.f('ix_sessions_member_id'))
        batch_op.drop_index(batch_op.f('ix_sessions_account_id'))

    op.drop_table('sessions')
    with op.batch_alter_table('login_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_links_operator_id'))
        batch_op.drop_index(batch_op.f('ix_login_links_member_id'))

    op.drop_table('login_links')
    with op.batch_alter_table('support_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_support_grants_operator_id'))
        batch_op.drop_index(batch_op.f('ix_support_grants_account_id'))

    op.drop_table('support_grants')
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operators_key_id'))

    op.drop_table('operators')
