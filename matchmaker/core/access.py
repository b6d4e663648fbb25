"""Access decorators. Object-level checks are the models' ``can_*`` methods."""
from __future__ import annotations

from functools import wraps

from flask import abort, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .enums import Role


def roles_required(*roles: Role):
    """Signed-in users holding any of ``roles`` (admins always pass)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles, Role.ADMIN):
                abort(403, _("This page needs one of these roles: %(roles)s",
                             roles=", ".join(str(r.label) for r in roles)))
            return view(*args, **kwargs)
        return wrapped
    return decorator


coordinator_required = roles_required(Role.COORDINATOR)
admin_required = roles_required(Role.ADMIN)


#: the largest id a table can hold (INTEGER primary keys: PostgreSQL refuses larger values with an error)
MAX_ID = 2**31 - 1
MAX_PAGE = 10_000  # a list page beyond this is not browsing; a huge one overflows the SQL OFFSET


def page_arg() -> int:
    """The ``page`` query argument, clamped to 1..MAX_PAGE (junk reads as 1)."""
    return max(1, min(request.args.get("page", 1, type=int), MAX_PAGE))


def get_or_404(model, ident):
    """Fetch by primary key; forged, non-integer or out-of-range ids give 404, never a 500."""
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        abort(404)
    if not 0 < ident <= MAX_ID:
        abort(404)
    from ..extensions import db
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    return obj
