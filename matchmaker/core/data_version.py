"""Counters that committed writes move on, in the write's own transaction: one for the whole database and
one per table.

Caches key on them: a key built from counters read before rendering can never hold data older than they say.
Any ORM session that flushed or was about to flush a change, or ran a bulk INSERT/UPDATE/DELETE, adds
``n = n + 1`` just before its commit to the database-wide counter (``current()``, the per-session page cache:
core.pagecache) and to the counter of each table it wrote (``tables(...)``, the caches shared across users:
core.sharedcache, so a write to needs leaves cached capability pages alone). A rolled-back transaction moves
nothing. The updates take their row locks last, at commit, in one order (table names sorted, the database-wide
row last), so writers queue on them briefly but cannot deadlock.
"""
from __future__ import annotations

import os
import threading

from sqlalchemy import DDL, BigInteger, CheckConstraint, Engine, String, event, inspect, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..extensions import db

_CHANGED = "matchmaker.data_changed"
_TABLES = "matchmaker.tables_changed"


class DataVersion(db.Model):
    """The single row (id 1) holding the counter."""

    __tablename__ = "data_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


# create_all (tests, fresh schemas) gets the row as the migration does
event.listen(DataVersion.__table__, "after_create",
             DDL("INSERT INTO data_version (id, n) VALUES (1, 0)"))


class TableVersion(db.Model):
    """One row per table written since the schema was made: how many committed transactions wrote it (a
    missing row reads 0)."""

    __tablename__ = "table_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


_TABLE = DataVersion.__table__
_READ = select(_TABLE.c.n).where(_TABLE.c.id == 1)
_PER_TABLE = TableVersion.__table__


def bump(connection) -> None:
    """Move every counter on in ``connection``'s transaction (a restore: every cached page becomes stale)."""
    _bump_tables(connection, [t.name for t in db.metadata.sorted_tables if t is not _PER_TABLE])
    connection.execute(update(_TABLE).where(_TABLE.c.id == 1).values(n=_TABLE.c.n + 1))


def _bump_tables(connection, names) -> None:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for name in sorted(set(names)):  # one lock order for every writer
        stmt = insert(_PER_TABLE).values(name=name, n=1)
        connection.execute(stmt.on_conflict_do_update(index_elements=[_PER_TABLE.c.name],
                                                      set_={"n": _PER_TABLE.c.n + 1}))


class _Reader:
    """One connection per process and engine kept for this read: a cached page is answered without a pool
    checkout, a session or a rollback at teardown (half the cost of a cache hit). Each read is its own short
    transaction, so it sees every commit and holds no snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(engine) → (pid, engine, connection); the engine is held so its id cannot pass to another one
        self._connections: dict[int, tuple[int, Engine, object]] = {}

    def read(self, engine: Engine, statement=_READ, all_rows: bool = False):
        with self._lock:
            pid, _engine, conn = self._connections.get(id(engine), (None, None, None))
            if pid != os.getpid():  # first use, or a forked child must not share its parent's socket
                conn = engine.connect()
                if pid is None:
                    event.listen(engine, "engine_disposed", self._forget)
                self._connections[id(engine)] = (os.getpid(), engine, conn)
            try:
                with conn.begin():
                    result = conn.execute(statement)
                    return result.all() if all_rows else result.scalar_one_or_none()
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


def tables(*names: str) -> tuple | None:
    """The counters of these tables as of now, in the order given (0 for a table never written); None if
    they cannot be read (caching then stays off)."""
    stmt = select(_PER_TABLE.c.name, _PER_TABLE.c.n).where(_PER_TABLE.c.name.in_(names))
    bind = db.engine
    try:
        if isinstance(bind, Engine):
            rows = _reader.read(bind, stmt, all_rows=True)
        else:
            rows = db.session.connection().execute(stmt).all()
    except Exception:
        db.session.rollback()
        return None
    found = dict(rows)
    return tuple(found.get(name, 0) for name in names)


def _changed_tables(session: Session) -> set[str]:
    """The tables of the changes pending in ``session``."""
    objects = list(session.new) + list(session.deleted) + [o for o in session.dirty if session.is_modified(o)]
    return {table.name for o in objects for table in inspect(o).mapper.tables}


def _note(session, names) -> None:
    session.info[_CHANGED] = True
    session.info.setdefault(_TABLES, set()).update(names)


@event.listens_for(Session, "before_flush")
def _note_flush(session, _flush_context, _instances):
    names = _changed_tables(session)
    if names:
        _note(session, names)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_statement(state):
    if state.is_insert or state.is_update or state.is_delete:
        names = {table.name for mapper in state.all_mappers for table in mapper.tables}
        table = getattr(state.statement, "table", None)
        if table is not None and getattr(table, "name", None):
            names.add(table.name)
        _note(state.session, names)


@event.listens_for(Session, "before_commit")
def _bump(session):
    # before_commit runs before the final autoflush: flush what is pending first, so every writer takes its
    # data rows' locks before the counters' (one lock order), and the flush notes its tables
    if _changed_tables(session):
        session.flush()
    if session.info.get(_CHANGED):
        # on the connection, not session.execute: an ORM UPDATE would mark the session changed again
        connection = session.connection()
        _bump_tables(connection, session.info.get(_TABLES) or ())
        connection.execute(update(_TABLE).where(_TABLE.c.id == 1).values(n=_TABLE.c.n + 1))


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _reset(session):
    session.info.pop(_CHANGED, None)
    session.info.pop(_TABLES, None)
