"""Data-subject requests, their history, erasure instructions, callbacks and form
verifications; the keyed index of each subject's e-mail hash (backfilled); encrypted mail
waiting for the worker.

Revision ID: 553fd8e27001
Revises: 46f631891882
Create Date: 2026-11-29 17:48:05.886905

"""
import hashlib
import uuid

from alembic import op
import sqlalchemy as sa
from flask import current_app


# revision identifiers, used by Alembic.
revision = '553fd8e27001'
down_revision = '46f631891882'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('queued_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payload_ct', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queued_mail'))
    )
    op.create_table('dsr_requests',
    sa.Column('subject_request_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('identity_index', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.String(length=200), nullable=True),
    sa.Column('email_ct', sa.LargeBinary(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('message_ct', sa.LargeBinary(), nullable=True),
    sa.Column('callback_urls', sa.JSON(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('extended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('exception', sa.String(length=32), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('no_data_held', sa.Boolean(), nullable=False),
    sa.Column('subject_ref', sa.Uuid(), nullable=True),
    sa.Column('results_count', sa.Integer(), nullable=True),
    sa.Column('results_prefix', sa.String(length=300), nullable=True),
    sa.Column('download_hash', sa.String(length=64), nullable=True),
    sa.Column('download_ct', sa.LargeBinary(), nullable=True),
    sa.Column('download_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ledger_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('access', 'portability', 'erasure')", name=op.f('ck_dsr_requests_kind')),
    sa.CheckConstraint("source IN ('opendsr', 'form')", name=op.f('ck_dsr_requests_source')),
    sa.CheckConstraint("status IN ('received', 'unverified', 'verified', 'in_progress', 'completed', 'rejected', 'cancelled')", name=op.f('ck_dsr_requests_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_dsr_requests_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsr_requests')),
    sa.UniqueConstraint('account_id', 'subject_request_id', name=op.f('uq_dsr_requests_account_id_subject_request_id')),
    sa.UniqueConstraint('download_hash', name=op.f('uq_dsr_requests_download_hash')),
    sa.UniqueConstraint('public_id', name=op.f('uq_dsr_requests_public_id'))
    )
    with op.batch_alter_table('dsr_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsr_requests_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_dsr_requests_account_id_status_due_at', ['account_id', 'status', 'due_at'], unique=False)

    op.create_table('dsr_callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name=op.f('ck_dsr_callbacks_state')),
    sa.ForeignKeyConstraint(['request_id'], ['dsr_requests.id'], name=op.f('fk_dsr_callbacks_request_id_dsr_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsr_callbacks'))
    )
    with op.batch_alter_table('dsr_callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsr_callbacks_request_id'), ['request_id'], unique=False)

    op.create_table('dsr_erasure_instructions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('target_ref', sa.String(length=64), nullable=False),
    sa.Column('target_name', sa.String(length=200), nullable=False),
    sa.Column('target_kind', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=8), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.String(length=100), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'confirmed')", name=op.f('ck_dsr_erasure_instructions_state')),
    sa.ForeignKeyConstraint(['request_id'], ['dsr_requests.id'], name=op.f('fk_dsr_erasure_instructions_request_id_dsr_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsr_erasure_instructions')),
    sa.UniqueConstraint('public_id', name=op.f('uq_dsr_erasure_instructions_public_id')),
    sa.UniqueConstraint('request_id', 'target_ref', name=op.f('uq_dsr_erasure_instructions_request_id_target_ref'))
    )
    with op.batch_alter_table('dsr_erasure_instructions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsr_erasure_instructions_request_id'), ['request_id'], unique=False)

    op.create_table('dsr_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['dsr_requests.id'], name=op.f('fk_dsr_events_request_id_dsr_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsr_events'))
    )
    with op.batch_alter_table('dsr_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsr_events_request_id'), ['request_id'], unique=False)

    op.create_table('dsr_verifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['dsr_requests.id'], name=op.f('fk_dsr_verifications_request_id_dsr_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsr_verifications')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_dsr_verifications_token_hash'))
    )
    with op.batch_alter_table('dsr_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsr_verifications_request_id'), ['request_id'], unique=False)

    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_hash_index', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_subjects_account_id_email_hash_index', ['account_id', 'email_hash_index'], unique=False)

    _backfill_email_hash_index()


def _backfill_email_hash_index():
    """Index existing subjects' e-mail hashes with the running app's keys."""
    connection = op.get_bind()
    ring = current_app.extensions["keyring"]
    index = current_app.extensions["blind_index"]
    rows = connection.execute(
        sa.text(
            "SELECT s.id, s.public_id, s.email_ct, s.key_id, a.public_id "
            "FROM subjects s JOIN accounts a ON a.id = s.account_id"
        )
    ).fetchall()
    for subject_id, public_id, email_ct, key_id, account_id in rows:
        # SQLite keeps UUIDs as 32 hex digits, PostgreSQL as uuid: both parse.
        public_id = str(uuid.UUID(str(public_id)))
        account_id = str(uuid.UUID(str(account_id)))
        email = ring.decrypt(email_ct, key_id, f"subjects:{public_id}:email".encode())
        digest = hashlib.sha256(email.encode()).hexdigest()
        connection.execute(
            sa.text("UPDATE subjects SET email_hash_index = :value WHERE id = :id"),
            {"value": index(account_id, "sha256:" + digest), "id": subject_id},
        )


def downgrade():
    op.drop_table('queued_mail')
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_index('ix_subjects_account_id_email_hash_index')
        batch_op.drop_column('email_hash_index')

    with op.batch_alter_table('dsr_verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsr_verifications_request_id'))

    op.drop_table('dsr_verifications')
    with op.batch_alter_table('dsr_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsr_events_request_id'))

    op.drop_table('dsr_events')
    with op.batch_alter_table('dsr_erasure_instructions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsr_erasure_instructions_request_id'))

    op.drop_table('dsr_erasure_instructions')
    with op.batch_alter_table('dsr_callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsr_callbacks_request_id'))

    op.drop_table('dsr_callbacks')
    with op.batch_alter_table('dsr_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_dsr_requests_account_id_status_due_at')
        batch_op.drop_index(batch_op.f('ix_dsr_requests_account_id'))

    op.drop_table('dsr_requests')
