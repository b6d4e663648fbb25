"""The inbox."""
from __future__ import annotations

import logging

from flask import Blueprint, has_request_context, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from ..core.access import MAX_ID, page_arg
from ..core.transaction import commit
from ..extensions import db
from .models import Notification
from .operations import mark_read, unread_at_load, unread_count

log = logging.getLogger(__name__)

bp = Blueprint("notifications", __name__)


@bp.app_template_global()
def unread_notifications() -> int:
    """The signed-in user's unread count for the navigation badge (0 for visitors): one COUNT, asked only
    where the layout shows the badge. Pages kept by core.pagecache stay right: creating a notification or
    reading one commits a write, which moves the data version those pages are keyed on."""
    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return 0
    known = unread_at_load(current_user)  # read with the user at the start of the request, nothing written since
    if known is not None:
        return known
    try:
        return unread_count(current_user)
    except SQLAlchemyError:  # e.g. the error page after a lost connection: show the page without a badge
        log.warning("could not count unread notifications", exc_info=True)
        return 0


@bp.get("/inbox")
@login_required
def inbox():
    """The signed-in user's notifications, newest first."""
    page = db.paginate(db.select(Notification).where(Notification.user_id == current_user.id)
                       .order_by(Notification.created_at.desc(), Notification.id.desc()),
                       page=page_arg(), per_page=30, error_out=False)
    return render_template("notifications/inbox.html", page=page)


@bp.post("/inbox/read")
@login_required
def read_all():
    """Mark every notification read."""
    mark_read(current_user)
    commit()
    return redirect(url_for("notifications.inbox"))


def _own_note(note_id: int) -> Notification | None:
    note = db.session.get(Notification, note_id) if note_id <= MAX_ID else None
    return note if note is not None and note.user_id == current_user.id else None


def _follow(note: Notification):
    target = note.link if note.link and note.link.startswith("/") and not note.link.startswith("//") else None
    return redirect(target or url_for("notifications.inbox"))


@bp.get("/inbox/<int:note_id>")
@login_required
def follow_note(note_id: int):
    """Follow a notification's link without marking it read: reading changes state only by a POST."""
    note = _own_note(note_id)
    if note is None:
        return render_template("errors/error.html", status=404, title="404"), 404
    return _follow(note)


@bp.post("/inbox/<int:note_id>")
@login_required
def open_note(note_id: int):
    """Open one notification from the inbox: mark it read and follow its link (local paths only)."""
    note = _own_note(note_id)
    if note is None:
        return render_template("errors/error.html", status=404, title="404"), 404
    mark_read(current_user, [note.id])
    commit()
    return _follow(note)
