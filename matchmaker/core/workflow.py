"""Errors and post-commit hooks shared by every service layer."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session


class WorkflowError(Exception):
    """An operation refused by a business rule; ``reason`` is shown to the user (translated)."""

    def __init__(self, reason: str, status: int = 409):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` only once the surrounding transaction has committed (e.g. index updates, mail)."""
    session.info.setdefault("after_commit", []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a failed side effect must not undo a committed change; it is rebuilt later
            import logging
            logging.getLogger(__name__).exception("post-commit hook failed")


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)
