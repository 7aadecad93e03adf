"""The schema is built by the migrations, and autogenerate finds nothing missing from them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
    with scratch.app_context():
        upgrade()
        downgrade(revision="base")
        assert db.inspect(db.engine).get_table_names() == ["alembic_version"]
        upgrade()
        assert "subjects" in db.inspect(db.engine).get_table_names()
        db.engine.dispose()
