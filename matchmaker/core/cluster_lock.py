"""Periodic jobs (digest, expiries) run once per cluster, whichever node's timer fires.

``once_per_cluster(name)`` takes a lock named ``name`` without waiting: on PostgreSQL a session-level advisory
lock (``pg_try_advisory_lock``) on a connection of its own, held while the job runs and released by PostgreSQL
if the process dies; on SQLite (one machine) an ``flock`` on a file beside the database. A runner that does
not get the lock skips the job: another node is running it right now. The jobs themselves are idempotent (a
digest records when each expert got one, an expiry finds nothing left to expire), so a timer that fires a
little later on another node finds nothing to do.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (the same on every node and Python run)."""
    digest = hashlib.blake2b(f"matchmaker:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def once_per_cluster(name: str, bind: Engine | Connection, lock_dir: str | os.PathLike | None = None
                     ) -> Iterator[bool]:
    """Yield True while this process holds the cluster-wide lock ``name``, False when another holds it."""
    if bind.dialect.name == "postgresql":
        with _advisory_lock(name, bind) as held:
            yield held
        return
    database = bind.url.database if isinstance(bind, Engine) else bind.engine.url.database
    if not database or database == ":memory:":
        yield True  # one process owns an in-memory database: nothing to share
        return
    folder = Path(lock_dir) if lock_dir else Path(database).resolve().parent
    with _file_lock(folder / f".{Path(database).name}.{name}.lock") as held:
        yield held


@contextmanager
def _advisory_lock(name: str, bind: Engine | Connection) -> Iterator[bool]:
    key = lock_key(name)
    own = isinstance(bind, Engine)
    # a connection of its own, outside any transaction: the lock belongs to the session, not to a transaction
    conn = bind.connect().execution_options(isolation_level="AUTOCOMMIT") if own else bind
    try:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        if own:
            conn.close()


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def periodic(name: str):
    """Decorate a click command's function: it runs only under the cluster lock ``name`` and otherwise
    says it skipped (exit status 0: a skip is the expected outcome on every node but one)."""
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            import click

            from ..extensions import db
            with once_per_cluster(name, db.engine) as held:
                if not held:
                    log.info("periodic job %s: another runner holds its lock; skipped", name)
                    click.echo(f"{name}: skipped, another node is running it")
                    return None
                return func(*args, **kwargs)
        return wrapper
    return decorate
