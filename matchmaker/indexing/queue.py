"""The job table's operations. Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
RETURNING``: on PostgreSQL concurrent workers skip each other's rows, on SQLite the statement holds the
write lock, so no job is claimed twice either way."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ..core.time import utcnow
from .models import IndexJob

#: a claim older than this is taken to belong to a dead worker and may be claimed again
STALE_AFTER_SECONDS = 600.0
#: a job failing this often is left alone (logged, kept with its last error) until the next reindex
MAX_ATTEMPTS = 5
#: first retry delay after a failure; doubles with each attempt
RETRY_DELAY_SECONDS = 5.0
_IN_CHUNK = 5000  # ids per IN (...) list, well below the parameter limits of SQLite and PostgreSQL


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    listing_id: int
    attempts: int


def enqueue(session: Session, kind: str, listing_id: int) -> None:
    """Add a job to ``session``'s transaction: it exists exactly when the listing change commits."""
    session.add(IndexJob(kind=kind, listing_id=listing_id))


def claim(session: Session, worker_id: str, limit: int, stale_after: float = STALE_AFTER_SECONDS,
          max_attempts: int = MAX_ATTEMPTS) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs for ``worker_id`` and commit the claim."""
    now = utcnow()
    due = (select(IndexJob.id)
           .where(IndexJob.done_at.is_(None), IndexJob.available_at <= now, IndexJob.attempts < max_attempts,
                  or_(IndexJob.claimed_at.is_(None), IndexJob.claimed_at < now - timedelta(seconds=stale_after)))
           .order_by(IndexJob.id).limit(limit))
    # Idle polls only read: on SQLite a write transaction blocks every request that reads and then writes.
    found = session.scalar(due.limit(1)) is not None
    session.rollback()
    if not found:
        return []
    due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(IndexJob).where(IndexJob.id.in_(due.scalar_subquery()))
        .values(claimed_at=now, claimed_by=worker_id, attempts=IndexJob.attempts + 1)
        .returning(IndexJob.id, IndexJob.kind, IndexJob.listing_id, IndexJob.attempts)
        .execution_options(synchronize_session=False)).all()
    session.commit()
    return sorted((ClaimedJob(*row) for row in rows), key=lambda job: job.id)


def finish(session: Session, jobs: list[ClaimedJob], worker_id: str, commit: bool = True) -> None:
    """Mark jobs done, unless another worker took them over as stale meanwhile (it will finish them);
    ``commit=False`` leaves the commit to the caller (the vectors' transaction, indexing.sync)."""
    for ids in _chunks([job.id for job in jobs]):
        session.execute(update(IndexJob)
                        .where(IndexJob.id.in_(ids), IndexJob.claimed_by == worker_id, IndexJob.done_at.is_(None))
                        .values(done_at=utcnow())
                        .execution_options(synchronize_session=False))
    if commit:
        session.commit()


def fail(session: Session, jobs: list[ClaimedJob], worker_id: str, error: str,
         retry_delay: float = RETRY_DELAY_SECONDS) -> None:
    """Release failed jobs with their error, due again after an exponential back-off."""
    now = utcnow()
    for job in jobs:
        session.execute(update(IndexJob)
                        .where(IndexJob.id == job.id, IndexJob.claimed_by == worker_id,
                               IndexJob.done_at.is_(None))
                        .values(claimed_at=None, claimed_by=None, last_error=error[:4000],
                                available_at=now + timedelta(seconds=retry_delay * 2 ** (job.attempts - 1)))
                        .execution_options(synchronize_session=False))
    session.commit()


def pending_ids(session: Session) -> list[int]:
    """Ids of every job not done yet (given-up ones included), as committed right now."""
    return list(session.scalars(select(IndexJob.id).where(IndexJob.done_at.is_(None))))


def settle(session: Session, ids: list[int]) -> int:
    """Mark jobs done because a full rebuild already covered them; returns how many."""
    settled = 0
    for chunk in _chunks(ids):
        settled += session.execute(update(IndexJob).where(IndexJob.id.in_(chunk), IndexJob.done_at.is_(None))
                                   .values(done_at=utcnow(), claimed_by=None)
                                   .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return settled


def counts(session: Session) -> dict[str, int]:
    """pending / done / failing (pending with an error recorded), for the CLI and tests."""
    pending = func.count().filter(IndexJob.done_at.is_(None))
    done = func.count().filter(IndexJob.done_at.is_not(None))
    failing = func.count().filter(IndexJob.done_at.is_(None), IndexJob.last_error.is_not(None))
    row = session.execute(select(pending, done, failing)).one()
    return {"pending": row[0], "done": row[1], "failing": row[2]}


def _chunks(ids: list[int]):
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]
