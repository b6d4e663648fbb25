"""Durable job tables: claiming, finishing and failing rows of any table shaped like a job queue.

A job table has ``available_at`` (not due before), ``claimed_at``/``claimed_by`` (who works on it since when),
``attempts``, ``last_error`` and a "finished" column (``done_at``, ``sent_at`` …) named by the caller. Claiming
is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on PostgreSQL concurrent workers
skip each other's rows, on SQLite the statement holds the write lock, so no row is claimed twice either way.
A claim older than ``stale_after`` seconds belongs to a dead worker and may be claimed again. A failure
releases the row with its error, due again after an exponential back-off (``retry_delay * 2**(attempts-1)``);
after ``max_attempts`` it stays in the table, unfinished, with its last error (never silently dropped).

(The index jobs' queue, ``indexing/queue.py``, has the same shape and predates this helper.)
"""
from __future__ import annotations

from datetime import timedelta
from typing import Iterable

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from .time import utcnow

_IN_CHUNK = 5000  # ids per IN (...) list, well below the parameter limits of SQLite and PostgreSQL


def _finished(model, finished: str):
    return getattr(model, finished)


def due_filter(model, finished: str, stale_after: float, max_attempts: int):
    now = utcnow()
    return (_finished(model, finished).is_(None), model.available_at <= now, model.attempts < max_attempts,
            or_(model.claimed_at.is_(None), model.claimed_at < now - timedelta(seconds=stale_after)))


def claim(session: Session, model, finished: str, worker_id: str, limit: int, stale_after: float,
          max_attempts: int, columns: Iterable = ()) -> list:
    """Claim up to ``limit`` due rows for ``worker_id`` and commit the claim; returns the rows of
    ``(id, attempts, *columns)`` in id order."""
    due = select(model.id).where(*due_filter(model, finished, stale_after, max_attempts)).order_by(model.id)
    # Idle polls only read: on SQLite a write transaction blocks every request that reads and then writes.
    found = session.scalar(due.limit(1)) is not None
    session.rollback()
    if not found:
        return []
    due = due.limit(limit).with_for_update(skip_locked=True)
    rows = session.execute(
        update(model).where(model.id.in_(due.scalar_subquery()))
        .values(claimed_at=utcnow(), claimed_by=worker_id, attempts=model.attempts + 1)
        .returning(model.id, model.attempts, *columns)
        .execution_options(synchronize_session=False)).all()
    session.commit()
    return sorted(rows, key=lambda row: row[0])


def finish(session: Session, model, finished: str, ids: list[int], worker_id: str) -> int:
    """Mark rows finished, unless another worker took them over as stale meanwhile; returns how many."""
    marked = 0
    for chunk in _chunks(ids):
        marked += session.execute(
            update(model).where(model.id.in_(chunk), model.claimed_by == worker_id,
                                _finished(model, finished).is_(None))
            .values({finished: utcnow()}).execution_options(synchronize_session=False)).rowcount
    session.commit()
    return marked


def fail(session: Session, model, finished: str, job_id: int, attempts: int, worker_id: str, error: str,
         retry_delay: float) -> None:
    """Release a failed row with its error, due again after an exponential back-off."""
    session.execute(
        update(model).where(model.id == job_id, model.claimed_by == worker_id, _finished(model, finished).is_(None))
        .values(claimed_at=None, claimed_by=None, last_error=error[:4000],
                available_at=utcnow() + timedelta(seconds=retry_delay * 2 ** max(0, attempts - 1)))
        .execution_options(synchronize_session=False))
    session.commit()


def depth(session: Session, model, finished: str) -> int:
    """Rows not finished yet (waiting, claimed, or given up after too many failures)."""
    return session.scalar(select(func.count()).select_from(model).where(_finished(model, finished).is_(None))) or 0


def _chunks(ids: list[int]):
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]
