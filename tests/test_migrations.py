"""The schema is built by the migrations, and autogenerate finds nothing missing from them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from privacy import database
from privacy.extensions import db


def test_models_and_migrations_agree(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(app, tmp_path):
    from flask_migrate import downgrade
    from flask_migrate import upgrade

    from privacy import create_app
    from tests.conftest import app_config

    scratch = create_app(app_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.sqlite3'}"))
    database.init_migrations(scratch)
    with scratch.app_context():
        upgrade()
        downgrade(revision="base")
        assert db.inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade()
        assert "subjects" in db.inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_the_email_hash_index_is_backfilled_for_existing_subjects(app, tmp_path):
    from flask_migrate import upgrade

    from privacy import create_app
    from privacy.accounts import services as accounts
    from privacy.inventory import services as inventory
    from privacy.inventory.models import Subject
    from tests.conftest import app_config

    scratch = create_app(app_config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'b.sqlite3'}"))
    database.init_migrations(scratch)
    with scratch.app_context():
        upgrade(revision="46f631891882")  # before the index existed
        account, _, _ = accounts.create_account(
            name="Acme", region="eu", admin_email="a@acme.example", admin_name=None, actor="t"
        )
        subject = Subject(account_id=account.id)
        subject.set_contact(
            name="Old Row", email="old@acme.example", index_scope=str(account.public_id)
        )
        db.session.execute(
            Subject.__table__.insert().values(
                public_id=subject.public_id,
                account_id=account.id,
                name_ct=subject.name_ct,
                email_ct=subject.email_ct,
                key_id=subject.key_id,
                email_index=subject.email_index,
            )
        )
        db.session.commit()
        db.session.refresh(account)
        db.session.expunge(account)
        db.session.remove()
        upgrade()
        row = db.session.scalar(db.select(Subject))
        assert row.email_hash_index == inventory.hash_index(
            account, inventory.email_hash("old@acme.example")
        )
        db.session.remove()
        db.engine.dispose()
