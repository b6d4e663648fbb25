"""Errors and post-commit hooks shared by every service layer."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

#: what a lost race raises: a version check (another request changed the row first) or a unique constraint
#: (the same thing created twice at the same moment). Operations flush, so either can surface inside an
#: operation call as well as at the commit.
RACE_ERRORS = (StaleDataError, IntegrityError)


class WorkflowError(Exception):
    """An operation refused by a business rule; ``reason`` is shown to the user (translated)."""

    def __init__(self, reason: str, status: int = 409):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def lock_row(model, row_id: int):
    """Take the row's lock (PostgreSQL: SELECT … FOR UPDATE) or the database write lock (SQLite has no row
    locks: a no-op UPDATE takes it), then re-read the row, so a decision sees what other requests committed
    meanwhile. None when the row is gone."""
    from ..extensions import db
    table = model.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(table).where(table.c.id == row_id).values(id=table.c.id))
    return db.session.execute(select(model).where(model.id == row_id).with_for_update(of=model)
                              .execution_options(populate_existing=True)).unique().scalar_one_or_none()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` only once the outermost transaction has committed (e.g. index updates, mail); a
    callback registered inside a savepoint that is rolled back never runs."""
    # begin one if none has (nothing written yet): a rollback then ends it and drops the callback
    tx = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault("after_commit", []).append((tx, callback))


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        # SQLAlchemy reports a released savepoint as a commit too; its work can still be rolled back with
        # the enclosing transaction, so its callbacks wait for the outermost commit
        session.info.setdefault("released_savepoints", []).append(savepoint)
        return
    released = session.info.pop("released_savepoints", [])
    for tx, callback in session.info.pop("after_commit", []):
        if not all(t in released for t in _savepoints_up_from(tx)):
            continue  # registered in a savepoint that was rolled back
        try:
            callback()
        except Exception:  # a failed side effect must not undo a committed change; it is rebuilt later
            import logging
            logging.getLogger(__name__).exception("post-commit hook failed")


def _savepoints_up_from(tx):
    while tx is not None and tx.nested:
        yield tx
        tx = tx.parent


@event.listens_for(Session, "after_transaction_end")
def _drop_after_commit(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: what it did not run never will
        session.info.pop("after_commit", None)
        session.info.pop("released_savepoints", None)
