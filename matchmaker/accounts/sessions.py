"""Signed-in sessions: start one, and end it server-side after inactivity or a maximum age.

The login time and the last request time live in the signed session cookie, so a copied old cookie is
expired too. API requests with a bearer token carry no session and are not concerned.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..core import audit
from ..core.errors import error_response, wants_json
from ..core.time import utcnow
from ..extensions import db

LOGIN_AT = "login_at"
SEEN_AT = "seen_at"
#: the last-seen stamp is rewritten at most this often (every write re-sends the cookie)
SEEN_RESOLUTION = timedelta(minutes=1)


def _now() -> float:
    return utcnow().timestamp()


def clear_keeping_language() -> None:
    """Empty the session; only the visitor's language choice survives."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def start_session(user, remember: bool = False) -> None:
    """A fresh session for ``user`` (nothing from the anonymous session survives except the language)."""
    clear_keeping_language()
    login_user(user, remember=remember)
    session[LOGIN_AT] = session[SEEN_AT] = _now()


def _over(login_at: float, seen_at: float, now: float) -> str | None:
    """'absolute' or 'idle' when a session with these stamps has ended, else None."""
    config = current_app.config
    if now - login_at > config["SESSION_MAX_HOURS"] * 3600:
        return "absolute"
    if now - seen_at > config["SESSION_IDLE_MINUTES"] * 60:
        return "idle"
    return None


def _seen_update_due(seen_at: float, now: float) -> bool:
    return now - seen_at >= SEEN_RESOLUTION.total_seconds()


def expiry_reason() -> str | None:
    """'idle' or 'absolute' when the current signed-in session is over, else None (and it is marked seen)."""
    now = _now()
    # sessions begun before timeouts existed, or restored from a remember-me cookie, start their clock now
    login_at = session.setdefault(LOGIN_AT, now)
    seen_at = session.get(SEEN_AT, now)
    reason = _over(login_at, seen_at, now)
    if reason is None and (SEEN_AT not in session or _seen_update_due(seen_at, now)):
        session[SEEN_AT] = now
    return reason


def current_and_settled() -> bool:
    """A signed-in session that is neither over nor due a last-seen update: a request may be answered
    without touching the session (the page cache serves only these, and anonymous visitors)."""
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if login_at is None or seen_at is None:
        return False
    now = _now()
    return _over(login_at, seen_at, now) is None and not _seen_update_due(seen_at, now)


def enforce_timeouts():
    """Before every request: log out an expired session (audited) and send the user to the login page."""
    if request.endpoint == "static" or not current_user.is_authenticated or "_user_id" not in session:
        return None
    reason = expiry_reason()
    if reason is None:
        return None
    user = current_user._get_current_object()
    audit.record("auth.session_expired", actor=user, target=user, to_state=reason)
    db.session.commit()
    lang = session.get("lang")
    logout_user()
    session.pop(LOGIN_AT, None)
    session.pop(SEEN_AT, None)
    if lang:
        session["lang"] = lang
    message = _("Your session has expired. Please log in again.")
    if wants_json():
        return error_response(401, _("Please sign in"), message)
    flash(message, "warning")
    next_url = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("accounts.login", next=next_url))
