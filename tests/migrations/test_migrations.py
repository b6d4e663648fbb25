"""Do the Alembic migrations build exactly the schema the models declare, and undo it, on this database?"""
from __future__ import annotations


from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from matchmaker import create_app
from matchmaker.extensions import db


def test_upgrade_matches_models_and_downgrade_empties(fresh_db_url, db_session):
    """Does `upgrade` from empty give the models' schema (no autogenerate diff), and `downgrade base` remove it?"""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_db_url, "MATCHMAKER_MATCHING": False,
                      "SECRET_KEY": "x" * 40})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()  # and back up again: the downgrade left nothing behind that blocks a re-run
        assert "needs" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_upgrade_from_previous_revision_keeps_data(fresh_db_url, db_session):
    """Upgrading a database at the previous revision to head keeps its rows and ends at the models' schema."""
    from alembic.script import ScriptDirectory
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_db_url, "MATCHMAKER_MATCHING": False,
                      "SECRET_KEY": "x" * 40})
    with app.app_context():
        script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
        head = script.get_current_head()
        previous = script.get_revision(head).down_revision
        assert previous is not None, "only one revision: nothing to upgrade from"
        upgrade(revision=previous)
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (name, kind, hub_city, created_at) "
                              "VALUES ('旧版本机构', 'enterprise', 'qingdao', CURRENT_TIMESTAMP)"))
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM organizations")).scalar_one() == "旧版本机构"
            assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
        db.engine.dispose()
