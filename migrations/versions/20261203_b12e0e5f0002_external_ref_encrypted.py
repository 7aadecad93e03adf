"""The controller's customer id is personal data: a subject's `external_ref` is encrypted
under the row's data key and found through a keyed index; a request's
`controller_customer_id` is kept as that keyed index only. Staging tables for bulk imports.

Existing values are carried over with the running app's keys (PRIVACY_DATA_KEYS,
PRIVACY_INDEX_KEY), like the e-mail hash index before them, and the plaintext columns are
dropped. SQLite rewrites the table for a dropped column, with secure_delete on, so the old
bytes are overwritten; PostgreSQL only hides a dropped column, so its two tables are
rewritten (CLUSTER) and the plaintext leaves the data files at the commit.

Downgrade decrypts the subjects' customer ids back into plaintext; a request's customer id
cannot come back (only its keyed index was kept), so it is empty after a downgrade.

Revision ID: b12e0e5f0002
Revises: 9e3b5c7a1d42
Create Date: 2026-12-03 10:00:00

"""
import os
import uuid

import sqlalchemy as sa
from alembic import op
from flask import current_app

revision = 'b12e0e5f0002'
down_revision = '9e3b5c7a1d42'
branch_labels = None
depends_on = None

NONCE_BYTES = 12  # privacy.crypto's layout: nonce || ciphertext+tag


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('PRAGMA secure_delete=ON')
    op.create_table('staged_subjects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Uuid(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('name_ct', sa.LargeBinary(), nullable=False),
    sa.Column('email_ct', sa.LargeBinary(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('email_index', sa.String(length=64), nullable=False),
    sa.Column('email_hash_index', sa.String(length=64), nullable=False),
    sa.Column('external_ref_ct', sa.LargeBinary(), nullable=True),
    sa.Column('external_ref_index', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_staged_subjects_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staged_subjects'))
    )
    with op.batch_alter_table('staged_subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staged_subjects_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staged_subjects_import_id'), ['import_id'], unique=False)

    op.create_table('staged_holdings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Uuid(), nullable=False),
    sa.Column('subject_public_id', sa.Uuid(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_staged_holdings_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['system_id'], ['systems.id'], name=op.f('fk_staged_holdings_system_id_systems'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staged_holdings'))
    )
    with op.batch_alter_table('staged_holdings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staged_holdings_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staged_holdings_import_id'), ['import_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staged_holdings_system_id'), ['system_id'], unique=False)

    op.add_column('subjects', sa.Column('external_ref_ct', sa.LargeBinary(), nullable=True))
    op.add_column('subjects', sa.Column('external_ref_index', sa.String(length=64), nullable=True))
    op.create_index('ix_subjects_account_id_external_ref_index', 'subjects', ['account_id', 'external_ref_index'], unique=False)
    op.add_column('dsr_requests', sa.Column('customer_index', sa.String(length=64), nullable=True))
    _encrypt_subject_refs()
    _index_request_customer_ids()
    # Not in batch mode: SQLite's batch would drop and re-create the tables, and dropping
    # a table deletes the rows that reference it (holdings, a request's history).
    op.drop_index('ix_subjects_account_id_external_ref', table_name='subjects')
    op.drop_column('subjects', 'external_ref')
    op.drop_column('dsr_requests', 'customer_id')
    if op.get_bind().dialect.name == 'postgresql':
        for table in ('subjects', 'dsr_requests'):
            op.execute(f'CLUSTER {table} USING pk_{table}')
            op.execute(f'ALTER TABLE {table} SET WITHOUT CLUSTER')


def _account_scopes(connection) -> dict:
    rows = connection.execute(sa.text('SELECT id, public_id FROM accounts'))
    # SQLite keeps UUIDs as 32 hex digits, PostgreSQL as uuid: both parse.
    return {account_id: str(uuid.UUID(str(public_id))) for account_id, public_id in rows}


def _ref_index(scope: str, ref: str) -> str:
    return current_app.extensions['blind_index'](scope, 'external_ref:' + ref)


def _encrypt_subject_refs():
    """Each subject's customer id under the key of its row (one key id opens the row)."""
    connection = op.get_bind()
    ring = current_app.extensions['keyring']
    scopes = _account_scopes(connection)
    rows = connection.execute(
        sa.text(
            'SELECT id, public_id, account_id, key_id, external_ref FROM subjects '
            'WHERE external_ref IS NOT NULL'
        )
    ).fetchall()
    for subject_id, public_id, account_id, key_id, ref in rows:
        public_id = str(uuid.UUID(str(public_id)))
        key = ring.keys.get(key_id)
        if key is None:
            raise RuntimeError(
                f'Subject {public_id} is under data key {key_id!r}, which is not in '
                'PRIVACY_DATA_KEYS: add it back, then upgrade again.'
            )
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + key.encrypt(nonce, ref.encode(), f'subjects:{public_id}:external_ref'.encode())
        connection.execute(
            sa.text(
                'UPDATE subjects SET external_ref_ct = :sealed, external_ref_index = :ix, '
                'external_ref = NULL WHERE id = :id'
            ),
            {'sealed': sealed, 'ix': _ref_index(scopes[account_id], ref), 'id': subject_id},
        )


def _index_request_customer_ids():
    connection = op.get_bind()
    scopes = _account_scopes(connection)
    rows = connection.execute(
        sa.text('SELECT id, account_id, customer_id FROM dsr_requests WHERE customer_id IS NOT NULL')
    ).fetchall()
    for request_id, account_id, customer_id in rows:
        connection.execute(
            sa.text('UPDATE dsr_requests SET customer_index = :ix, customer_id = NULL WHERE id = :id'),
            {'ix': _ref_index(scopes[account_id], customer_id), 'id': request_id},
        )


def downgrade():
    op.add_column('dsr_requests', sa.Column('customer_id', sa.String(length=200), nullable=True))
    op.drop_column('dsr_requests', 'customer_index')
    op.add_column('subjects', sa.Column('external_ref', sa.String(length=200), nullable=True))
    connection = op.get_bind()
    ring = current_app.extensions['keyring']
    rows = connection.execute(
        sa.text('SELECT id, public_id, key_id, external_ref_ct FROM subjects WHERE external_ref_ct IS NOT NULL')
    ).fetchall()
    for subject_id, public_id, key_id, sealed in rows:
        public_id = str(uuid.UUID(str(public_id)))
        ref = ring.decrypt(sealed, key_id, f'subjects:{public_id}:external_ref'.encode())
        connection.execute(
            sa.text('UPDATE subjects SET external_ref = :ref WHERE id = :id'),
            {'ref': ref, 'id': subject_id},
        )
    op.drop_index('ix_subjects_account_id_external_ref_index', table_name='subjects')
    op.drop_column('subjects', 'external_ref_index')
    op.drop_column('subjects', 'external_ref_ct')
    op.create_index('ix_subjects_account_id_external_ref', 'subjects', ['account_id', 'external_ref'], unique=False)

    with op.batch_alter_table('staged_holdings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staged_holdings_system_id'))
        batch_op.drop_index(batch_op.f('ix_staged_holdings_import_id'))
        batch_op.drop_index(batch_op.f('ix_staged_holdings_account_id'))

    op.drop_table('staged_holdings')
    with op.batch_alter_table('staged_subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staged_subjects_import_id'))
        batch_op.drop_index(batch_op.f('ix_staged_subjects_account_id'))

    op.drop_table('staged_subjects')
