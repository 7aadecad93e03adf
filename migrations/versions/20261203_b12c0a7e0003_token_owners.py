"""Tokens minted through the API before they had an owner get the member who minted them,
read from the audit log: `token.created` names the minting token (`token:<id>`) or member
(`member:<id>`), and a token minted by an ownerless token gets that token's owner in turn.
Removing or demoting that member then revokes them. A token whose minter cannot be found
keeps no owner (it cannot mint tokens, see privacy/auth/permissions.py).

No schema change; the downgrade leaves the owners in place.

Revision ID: b12c0a7e0003
Revises: b12a0a11a001
Create Date: 2026-12-03 15:00:00

"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = 'b12c0a7e0003'
down_revision = 'b12a0a11a001'
branch_labels = None
depends_on = None

tokens = sa.table(
    'api_tokens',
    sa.column('id', sa.Integer),
    sa.column('public_id', sa.String),
    sa.column('account_id', sa.Integer),
    sa.column('member_id', sa.Integer),
)
members = sa.table(
    'members',
    sa.column('id', sa.Integer),
    sa.column('public_id', sa.String),
    sa.column('account_id', sa.Integer),
)
events = sa.table(
    'audit_events',
    sa.column('id', sa.Integer),
    sa.column('actor', sa.String),
    sa.column('action', sa.String),
    sa.column('object_id', sa.String),
)


def _key(value) -> str | None:
    """A UUID however the database returns it (hex, hyphenated or a UUID)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def upgrade():
    bind = op.get_bind()
    every_token = {
        _key(public_id): (token_id, account_id, member_id)
        for token_id, public_id, account_id, member_id in bind.execute(
            sa.select(tokens.c.id, tokens.c.public_id, tokens.c.account_id, tokens.c.member_id)
        )
    }
    orphans = {key for key, (_, _, member_id) in every_token.items() if member_id is None}
    if not orphans:
        return
    member_of = {
        _key(public_id): (member_id, account_id)
        for member_id, public_id, account_id in bind.execute(
            sa.select(members.c.id, members.c.public_id, members.c.account_id)
        )
    }
    minted_by = {}
    for object_id, actor in bind.execute(
        sa.select(events.c.object_id, events.c.actor)
        .where(events.c.action == 'token.created')
        .order_by(events.c.id)
    ):
        key = _key(object_id)
        if key in orphans:
            minted_by.setdefault(key, actor or '')

    owners: dict[str, int | None] = {}

    def owner(key: str, seen: frozenset = frozenset()) -> int | None:
        """The member who minted token `key`, following ownerless minting tokens."""
        if key in owners:
            return owners[key]
        _, account_id, member_id = every_token[key]
        found = member_id
        kind, _, ident = minted_by.get(key, '').partition(':')
        if found is None and kind == 'member':
            member_id, member_account = member_of.get(_key(ident), (None, None))
            found = member_id if member_account == account_id else None
        elif found is None and kind == 'token':
            minter = _key(ident)
            if minter in every_token and minter not in seen and every_token[minter][1] == account_id:
                found = owner(minter, seen | {key})
        owners[key] = found
        return found

    for key in sorted(orphans):
        member_id = owner(key)
        if member_id is not None:
            bind.execute(
                sa.update(tokens)
                .where(tokens.c.id == every_token[key][0])
                .values(member_id=member_id)
            )


def downgrade():
    pass
