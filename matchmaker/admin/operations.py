"""Administration of accounts: activation and roles. Every change is audited; functions flush, never commit."""
from __future__ import annotations

from flask_babel import gettext as _

from ..accounts.models import ExpertProfile, User, UserRole
from ..core import audit
from ..core.enums import HubCity, Role
from ..core.workflow import WorkflowError
from ..extensions import db


def _parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise WorkflowError(_("Unknown role."), 400) from None


def set_active(admin: User, user: User, active: bool) -> bool:
    """Activate or deactivate ``user``; returns whether anything changed. Deactivation ends their sessions."""
    if user.id == admin.id and not active:
        raise WorkflowError(_("You cannot deactivate your own account."), 409)
    if user.active == active:
        return False
    user.active = active
    if not active:
        user.rotate_session_token()
    audit.record("admin.activate" if active else "admin.deactivate", actor=admin, target=user,
                 from_state="active" if not active else "inactive",
                 to_state="active" if active else "inactive")
    db.session.flush()
    return True


def grant_role(admin: User, user: User, role: str, hub_city: str | None = None) -> bool:
    """Grant ``role``; a coordinator may be scoped to one hub city (None: all). Returns whether it changed."""
    role = _parse_role(role)
    hub_city = hub_city or None
    if hub_city is not None:
        if role != Role.COORDINATOR:
            raise WorkflowError(_("Only the coordinator role can be limited to a hub city."), 400)
        if hub_city not in HubCity.values():
            raise WorkflowError(_("Unknown hub city."), 400)
    existing = next((r for r in user.roles if r.role == role.value), None)
    if existing is not None:
        if existing.hub_city == hub_city:
            return False
        before = existing.hub_city or "all"
        existing.hub_city = hub_city
        audit.record("admin.role_scope", actor=admin, target=user, from_state=f"{role.value}:{before}",
                     to_state=f"{role.value}:{hub_city or 'all'}")
        db.session.flush()
        return True
    user.roles.append(UserRole(role=role.value, hub_city=hub_city))
    if role == Role.EXPERT and user.expert_profile is None:
        db.session.add(ExpertProfile(user=user, fields=[], languages=[]))
    audit.record("admin.role_grant", actor=admin, target=user,
                 to_state=role.value if hub_city is None else f"{role.value}:{hub_city}")
    db.session.flush()
    return True


def revoke_role(admin: User, user: User, role: str) -> bool:
    """Revoke ``role`` (an admin cannot revoke their own admin role). Returns whether it changed."""
    role = _parse_role(role)
    if user.id == admin.id and role == Role.ADMIN:
        raise WorkflowError(_("You cannot remove your own administrator role. Ask another administrator."), 409)
    existing = next((r for r in user.roles if r.role == role.value), None)
    if existing is None:
        return False
    user.roles.remove(existing)
    audit.record("admin.role_revoke", actor=admin, target=user, from_state=role.value)
    db.session.flush()
    return True


def bootstrap_admin(email: str) -> User:
    """Grant the admin role from the command line (the first admin cannot be appointed through the web).

    Meant for a ``matchmaker create-admin EMAIL`` command; audited with no actor."""
    from ..accounts.operations import normalize_email
    user = db.session.scalar(db.select(User).where(db.func.lower(User.email) == normalize_email(email)))
    if user is None:
        raise WorkflowError(_("No account with this email."), 404)
    if not user.has_role(Role.ADMIN):
        user.roles.append(UserRole(role=Role.ADMIN.value))
        audit.record("admin.role_grant", target=user, to_state=Role.ADMIN.value)  # no actor: the command line
    if not user.active:  # the way back in when every administrator was deactivated
        user.active = True
        audit.record("admin.activate", target=user, from_state="inactive", to_state="active")
    db.session.flush()
    return user
