"""SQLite (the embedded default): a request that may write takes the write lock when its transaction begins,
so it waits its turn instead of failing with "database is locked" while another connection commits."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from matchmaker.extensions import db


@pytest.fixture
def sqlite_app(fresh_app):
    app = fresh_app("locking")
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's locking; PostgreSQL locks rows")
    return app


def _other_connection(app) -> sqlite3.Connection:
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    return sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)


def _write_lock_free(other: sqlite3.Connection) -> bool:
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    other.execute("ROLLBACK")
    return True


@pytest.mark.parametrize("method, endpoint_path, holds_lock", [
    ("POST", "/login", True),                # may write: takes the lock at its first query
    ("GET", "/needs", False),                # reads leave the lock to others
    ("POST", "/assist/need", False),         # marked read-only: runs the model, must not block writers
])
def test_which_requests_hold_the_write_lock(sqlite_app, method, endpoint_path, holds_lock):
    """Does a request's transaction hold SQLite's write lock from its first query exactly when it may write?"""
    other = _other_connection(sqlite_app)
    with sqlite_app.test_request_context(endpoint_path, method=method):
        db.session.execute(db.text("SELECT count(*) FROM users")).scalar()
        assert _write_lock_free(other) is not holds_lock
        db.session.rollback()
    other.close()


def test_read_then_write_waits_for_a_concurrent_writer_instead_of_failing(sqlite_app):
    """A POST that reads, then writes while another connection holds the write lock: does it wait and succeed
    (begun as a read, it fails at once with "database is locked")?"""
    writer = _other_connection(sqlite_app)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE data_version SET n = n + 1")
    release = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        with sqlite_app.test_request_context("/login", method="POST"):
            before = db.session.execute(db.text("SELECT n FROM data_version")).scalar()
            db.session.execute(db.text("UPDATE data_version SET n = n + 10"))
            db.session.commit()
            after = db.session.execute(db.text("SELECT n FROM data_version")).scalar()
    finally:
        release.join()
        writer.close()
    assert before == 1 and after == 11  # it began only after the other writer's commit
