"""The job table's operations.

Claiming takes due rows ``FOR UPDATE SKIP LOCKED`` (on SQLite the statement holds the write lock), so no job
is claimed twice at once. Who may take over a claim differs by database:

* PostgreSQL: a claim is a *lease*, a session-level advisory lock on the job's id held by the worker on a
  connection of its own (``Leases``) from the claim until its outcome (done, or failed and released) has
  committed. A live worker's lease cannot be taken, however long the batch runs; a worker that dies
  (``kill -9``, OOM, a lost machine) loses its connection, PostgreSQL drops its locks, and the next claim by
  any other worker takes its jobs over. ``--stale-after`` plays no part there.
* SQLite (one machine): a claim older than ``stale_after`` counts as abandoned.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import BigInteger, Integer, bindparam, func, literal_column, or_, select, table, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine
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
#: first key of the two-key advisory locks that are index-job leases (the second is the job id); other
#: advisory locks of the application use other first keys or the one-key (bigint) form
LEASE_LOCK_CLASS = 17_001
#: a lease connection whose peer vanished without closing it (a lost machine) is dropped by the server
#: after about idle + interval × count seconds of silence: well within the 30 s takeover bound
KEEPALIVE = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 3, "tcp_keepalives_count": 3}


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    listing_id: int
    attempts: int


def enqueue(session: Session, kind: str, listing_id: int) -> None:
    """Add a job to ``session``'s transaction: it exists exactly when the listing change commits."""
    session.add(IndexJob(kind=kind, listing_id=listing_id))


class Leases:
    """One worker's leases on its claimed jobs: PostgreSQL session-level advisory locks on a dedicated
    autocommit connection that lives as long as the worker (no transaction is held open). Elsewhere a no-op:
    every claim is granted and the ``stale_after`` rule applies."""

    def __init__(self, engine: Engine | Connection) -> None:
        self.engine = engine.engine if isinstance(engine, Connection) else engine
        self.enabled = self.engine.dialect.name == "postgresql"
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.detach()  # never back to the pool: a pooled connection would keep the locks after close()
            for name, value in KEEPALIVE.items():
                conn.exec_driver_sql(f"SET {name} = {int(value)}")
            self._conn = conn
        return self._conn

    def take(self, ids: list[int]) -> list[int]:
        """Of ``ids``, the ones whose lease this worker holds now (already held, or free and taken)."""
        if not self.enabled or not ids:
            return list(ids)
        rows = self._connection().execute(
            text("SELECT id FROM unnest(:ids) AS t(id) WHERE pg_try_advisory_lock(:cls, id)")
            .bindparams(bindparam("ids", type_=ARRAY(Integer))), {"ids": list(ids), "cls": LEASE_LOCK_CLASS})
        return [row[0] for row in rows]

    def release(self, ids: list[int]) -> None:
        """Give the leases up: only once the jobs' outcome has committed."""
        if not self.enabled or not ids or self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:cls, id) FROM unnest(:ids) AS t(id)")
                               .bindparams(bindparam("ids", type_=ARRAY(Integer))),
                               {"ids": list(ids), "cls": LEASE_LOCK_CLASS})
        except Exception:  # the connection is gone, and the server dropped its locks with it
            self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # a detached connection really closes: the server drops the session's locks
            except Exception:
                conn.invalidate()


def _leased_elsewhere():
    """Ids of the jobs some session of this database holds a lease on (PostgreSQL). A filter only, so that a
    claim looks past the jobs live workers are busy with; the advisory lock itself decides."""
    return (select(literal_column("objid").cast(BigInteger)).select_from(table("pg_locks"))
            .where(text("locktype = 'advisory' AND classid = :cls AND objsubid = 2 AND granted AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())")
                   .bindparams(cls=LEASE_LOCK_CLASS)))


def claim(session: Session, worker_id: str, limit: int, stale_after: float = STALE_AFTER_SECONDS,
          max_attempts: int = MAX_ATTEMPTS, leases: Leases | None = None) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs for ``worker_id`` and commit the claim.

    With ``leases`` on PostgreSQL, a job is due whoever claimed it before unless a live worker holds its
    lease, and the claim holds the lease until ``finish``/``fail`` release it. Without (or on SQLite), a
    claim younger than ``stale_after`` keeps the job.
    """
    if leases is not None and leases.enabled:
        return _claim_leased(session, worker_id, limit, max_attempts, leases)
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


def _claim_leased(session: Session, worker_id: str, limit: int, max_attempts: int,
                  leases: Leases) -> list[ClaimedJob]:
    now = utcnow()
    due = (select(IndexJob.id)
           .where(IndexJob.done_at.is_(None), IndexJob.available_at <= now, IndexJob.attempts < max_attempts))
    found = session.scalar(due.where(IndexJob.id.not_in(_leased_elsewhere())).limit(1)) is not None
    session.rollback()  # idle polls only read
    if not found:
        return []
    # Row locks first (skipping rows another worker is claiming or finishing right now), then the leases:
    # a row locked here cannot be finished by its previous holder meanwhile, and a lease still held by a
    # live worker is refused. Only the rows with both are claimed.
    candidates = list(session.scalars(due.where(IndexJob.id.not_in(_leased_elsewhere()))
                                      .order_by(IndexJob.id).limit(limit).with_for_update(skip_locked=True)))
    taken: list[int] = []
    try:
        taken = leases.take(candidates)
        rows = session.execute(
            update(IndexJob).where(IndexJob.id.in_(taken))
            .values(claimed_at=now, claimed_by=worker_id, attempts=IndexJob.attempts + 1)
            .returning(IndexJob.id, IndexJob.kind, IndexJob.listing_id, IndexJob.attempts)
            .execution_options(synchronize_session=False)).all() if taken else []
        session.commit()
    except BaseException:
        session.rollback()
        leases.release(taken)
        raise
    return sorted((ClaimedJob(*row) for row in rows), key=lambda job: job.id)


def finish(session: Session, jobs: list[ClaimedJob], worker_id: str, commit: bool = True,
           leases: Leases | None = None) -> None:
    """Mark jobs done, unless another worker took them over meanwhile (it will finish them), then release
    their leases (after the commit: until then no other worker may take them). ``commit=False`` leaves the
    commit to the caller (the vectors' transaction, indexing.sync), and the release with it."""
    for ids in _chunks([job.id for job in jobs]):
        session.execute(update(IndexJob)
                        .where(IndexJob.id.in_(ids), IndexJob.claimed_by == worker_id, IndexJob.done_at.is_(None))
                        .values(done_at=utcnow())
                        .execution_options(synchronize_session=False))
    if commit:
        session.commit()
        if leases is not None:
            leases.release([job.id for job in jobs])


def fail(session: Session, jobs: list[ClaimedJob], worker_id: str, error: str,
         retry_delay: float = RETRY_DELAY_SECONDS, leases: Leases | None = None) -> None:
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
    if leases is not None:
        leases.release([job.id for job in jobs])


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
