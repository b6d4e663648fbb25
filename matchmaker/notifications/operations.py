"""Create notifications inside the current transaction, with their emails in the same transaction's durable
outbox (``mail.py``: sent by a mail runner once it has committed, retried until the server takes them)."""
from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..core.time import utcnow
from ..extensions import db
from .mail import queue_mail
from .models import Notification


def notify(users, kind: str, subject, body="", link: str | None = None,
           email: bool = True) -> list[Notification]:
    """Add an inbox entry for each user (inactive users and duplicates skipped) and queue their emails, all
    in the caller's transaction (nothing is sent if it rolls back). Give
    ``subject`` and ``body`` as ``lazy_gettext`` strings so each recipient reads them in their language."""
    seen, created = set(), []
    for user in users:
        if user is None or user.id in seen or not user.active:
            continue
        seen.add(user.id)
        their_subject, their_body = in_their_language(user, subject), in_their_language(user, body)
        note = Notification(user_id=user.id, kind=kind, subject=their_subject[:200], body=their_body, link=link)
        db.session.add(note)
        created.append(note)
        if email:
            base = current_app.config.get("PUBLIC_URL", "")
            queue_mail(user.email, their_subject, their_body + (f"\n\n{base}{link}" if link else ""))
    return created


def in_their_language(user, text) -> str:
    """``text`` for ``user``: a lazy translation (``lazy_gettext``) is rendered in the recipient's language,
    not in that of whoever caused the notification; plain text (a user's own message) stays as it is."""
    if text is None or isinstance(text, str):
        return text or ""
    with force_locale(getattr(user, "locale", None) or "zh_CN"):
        return str(text)


def mark_read(user, note_ids=None) -> int:
    """Mark the user's notifications (all, or the given ids) read; returns how many changed."""
    stmt = db.update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if note_ids is not None:
        stmt = stmt.where(Notification.id.in_(list(note_ids)))
    return db.session.execute(stmt.values(read_at=utcnow())).rowcount


def unread_count(user) -> int:
    return db.session.scalar(db.select(db.func.count(Notification.id)).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def unread_count_of_user(user_id_column):
    """The unread count as a correlated scalar subquery: the request's user loader selects it with the user."""
    return (db.select(db.func.count(Notification.id))
            .where(Notification.user_id == user_id_column, Notification.read_at.is_(None))
            .correlate_except(Notification).scalar_subquery())


#: attribute of a loaded User holding the unread count read with it, and the session's write count then (any
#: flush or bulk write afterwards, e.g. a notification created or read in this request, means "count again")
_UNREAD_AT_LOAD = "_unread_at_load"


def remember_unread_count(user, count: int) -> None:
    """Keep the count read with the user for this request's navigation badge (``unread_at_load``)."""
    setattr(user, _UNREAD_AT_LOAD, (int(count or 0), _writes(db.session)))


def unread_at_load(user) -> int | None:
    """The count read with the user, if nothing was flushed in this session since (else None: count again)."""
    found = getattr(user, _UNREAD_AT_LOAD, None)
    if found is None or found[1] != _writes(db.session):
        return None
    return found[0]


def _writes(session) -> int:
    return session.info.get("flushes", 0)


@event.listens_for(Session, "after_flush")
def _count_flush(session, _context) -> None:
    session.info["flushes"] = session.info.get("flushes", 0) + 1


@event.listens_for(Session, "do_orm_execute")
def _count_bulk_write(state) -> None:  # mark_read is an UPDATE statement, not a flush
    if state.is_update or state.is_delete or state.is_insert:
        state.session.info["flushes"] = state.session.info.get("flushes", 0) + 1

