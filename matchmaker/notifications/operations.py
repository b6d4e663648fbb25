"""Create notifications inside the current transaction; email them once it has committed.

Mail goes to an SMTP server when ``MAIL_SERVER`` is set, otherwise to a file outbox
(``MAIL_OUTBOX_DIR``, default ``instance/outbox``): one .eml file per message, which tests read.
"""
from __future__ import annotations

import logging
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..core.time import utcnow
from ..core.workflow import after_commit
from ..extensions import db
from .models import Notification

log = logging.getLogger(__name__)


def notify(users, kind: str, subject, body="", link: str | None = None,
           email: bool = True) -> list[Notification]:
    """Add an inbox entry for each user (inactive users and duplicates skipped); queue the emails. Give
    ``subject`` and ``body`` as ``lazy_gettext`` strings so each recipient reads them in their language."""
    seen, created, messages = set(), [], []
    for user in users:
        if user is None or user.id in seen or not user.active:
            continue
        seen.add(user.id)
        their_subject, their_body = in_their_language(user, subject), in_their_language(user, body)
        note = Notification(user_id=user.id, kind=kind, subject=their_subject[:200], body=their_body, link=link)
        db.session.add(note)
        created.append(note)
        messages.append((user.email, their_subject, their_body, link))
    if email and created:
        app = current_app._get_current_object()
        after_commit(db.session(), lambda: _send_all(app, messages))
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


def _send_all(app, messages) -> None:
    with app.app_context():
        for to, subject, body, link in messages:
            try:
                send_email(to, subject, body + (f"\n\n{app.config.get('PUBLIC_URL', '')}{link}" if link else ""))
            except Exception:  # the inbox entry exists; a mail failure is logged, not raised after commit
                log.exception("could not send mail to %s", to)


def send_email(to: str, subject: str, body: str) -> None:
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"] = cfg.get("MAIL_FROM", "matchmaker@localhost")
    msg["To"] = to
    msg["Subject"] = " ".join(subject.split())  # a title with a line break is one header line, not an error
    msg.set_content(body)
    if cfg.get("MAIL_SERVER"):
        with smtplib.SMTP(cfg["MAIL_SERVER"], int(cfg.get("MAIL_PORT", 25)), timeout=10) as smtp:
            smtp.send_message(msg)
        return
    outbox = Path(cfg.get("MAIL_OUTBOX_DIR") or Path(current_app.instance_path) / "outbox")
    outbox.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
    tmp = outbox / f".{name}.tmp"
    tmp.write_bytes(bytes(msg))
    tmp.replace(outbox / name)  # atomic: a reader never sees half a message
