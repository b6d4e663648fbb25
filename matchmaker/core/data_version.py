"""One database-wide counter that every committed write moves on, in the write's own transaction.

Caches of rendered pages key on it (core.pagecache): a key built from the counter read before rendering can
never hold data older than the counter says. Any ORM session that flushed or was about to flush a change, or
ran a bulk INSERT/UPDATE/DELETE, adds ``n = n + 1`` just before its commit; a rolled-back transaction moves
nothing. The update takes the row lock last, at commit, so writers queue on it briefly but cannot deadlock.
"""
from __future__ import annotations

import os
import threading

from sqlalchemy import DDL, BigInteger, CheckConstraint, Engine, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..extensions import db

_CHANGED = "matchmaker.data_changed"


class DataVersion(db.Model):
    """The single row (id 1) holding the counter."""

    __tablename__ = "data_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


# create_all (tests, fresh schemas) gets the row as the migration does
event.listen(DataVersion.__table__, "after_create",
             DDL("INSERT INTO data_version (id, n) VALUES (1, 0)"))


_TABLE = DataVersion.__table__
_READ = select(_TABLE.c.n).where(_TABLE.c.id == 1)


def bump(connection) -> None:
    """Move the counter on in ``connection``'s transaction (every kept page becomes stale)."""
    connection.execute(update(_TABLE).where(_TABLE.c.id == 1).values(n=_TABLE.c.n + 1))


class _Reader:
    """One connection per process and engine kept for this read: a cached page is answered without a pool
    checkout, a session or a rollback at teardown (half the cost of a cache hit). Each read is its own short
    transaction, so it sees every commit and holds no snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(engine) → (pid, engine, connection); the engine is held so its id cannot pass to another one
        self._connections: dict[int, tuple[int, Engine, object]] = {}

    def read(self, engine: Engine) -> int | None:
        with self._lock:
            pid, _engine, conn = self._connections.get(id(engine), (None, None, None))
            if pid != os.getpid():  # first use, or a forked child must not share its parent's socket
                conn = engine.connect()
                if pid is None:
                    event.listen(engine, "engine_disposed", self._forget)
                self._connections[id(engine)] = (os.getpid(), engine, conn)
            try:
                with conn.begin():
                    return conn.execute(_READ).scalar_one_or_none()
            except Exception:
                conn.invalidate()
                del self._connections[id(engine)]
                raise

    def _forget(self, engine: Engine) -> None:
        """engine.dispose() closes our connection too (a database being dropped must have none open)."""
        with self._lock:
            pid, _engine, conn = self._connections.pop(id(engine), (None, None, None))
        if conn is not None and pid == os.getpid():
            conn.close()


_reader = _Reader()


def current() -> int | None:
    """The counter as of now; None if the table is missing or empty (caching then stays off)."""
    bind = db.engine
    try:
        if isinstance(bind, Engine):
            return _reader.read(bind)
        # bound to a Connection (the test suite's outer transaction): only that connection sees its writes
        return db.session.connection().execute(_READ).scalar_one_or_none()
    except Exception:  # an old schema before the migration, a lost connection: no caching, never an error
        db.session.rollback()
        return None


def _pending_changes(session: Session) -> bool:
    return bool(session.new or session.deleted or any(session.is_modified(o) for o in session.dirty))


@event.listens_for(Session, "before_flush")
def _note_flush(session, _flush_context, _instances):
    if _pending_changes(session):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_statement(state):
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _bump(session):
    # before_commit runs before the final autoflush, so changes still pending count too
    if session.info.get(_CHANGED) or _pending_changes(session):
        # on the connection, not session.execute: an ORM UPDATE would mark the session changed again
        bump(session.connection())


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _reset(session):
    session.info.pop(_CHANGED, None)
