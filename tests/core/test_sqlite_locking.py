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


def test_a_long_read_elsewhere_does_not_hold_off_a_pages_commit(sqlite_app):
    """Regression (2026-12-07): the index worker ranked every open need inside one read transaction after a
    publish, and a firm's POST /needs/new failed with "database is locked" after the 5-second busy timeout
    (rollback journal: a commit waits for every reader). In WAL mode, does the write commit at once while the
    other connection's read transaction stays open?"""
    reader = _other_connection(sqlite_app)
    reader.execute("BEGIN")
    seen = reader.execute("SELECT n FROM data_version").fetchone()[0]  # holds its read snapshot
    try:
        with sqlite_app.test_request_context("/login", method="POST"):
            assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
            db.session.execute(db.text("UPDATE data_version SET n = n + 1"))
            db.session.execute(db.text("PRAGMA busy_timeout=200"))  # fail fast if the reader still blocks it
            db.session.commit()
        assert reader.execute("SELECT n FROM data_version").fetchone()[0] == seen  # its snapshot is unchanged
    finally:
        reader.execute("ROLLBACK")
        reader.close()


def test_a_separate_session_during_a_post_does_not_wait_for_the_requests_own_lock(sqlite_app):
    """Regression (2026-12-07): proposing a pairing (a POST, holding the write lock) read the stored vectors in
    a session of its own, whose BEGIN IMMEDIATE waited on the request's own lock until "database is locked".
    Does such a session begin as a plain read and answer at once?"""
    from matchmaker.indexing import vectors
    with sqlite_app.test_request_context("/pairings/propose", method="POST"):
        db.session.execute(db.text("SELECT count(*) FROM users")).scalar()  # the request holds the lock
        with vectors._session() as session:
            session.execute(db.text("PRAGMA busy_timeout=200"))
            assert vectors.current_seq(session) >= 0
        db.session.rollback()
