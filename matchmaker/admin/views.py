"""Admin pages: users (search, activation, roles) and the audit trail. Admins only."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_

from ..accounts.models import User, UserRole
from ..core.access import admin_required, get_or_404, page_arg
from ..core.audit import AuditEvent
from ..core.enums import Role
from ..core.transaction import LostRace, commit, transaction
from ..extensions import db
from . import operations as ops
from .forms import ActionForm, ActiveForm, AuditFilterForm, GrantRoleForm, UserFilterForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _back_to(user: User):
    return redirect(url_for("admin.user_detail", user_id=user.id), code=303)


#: another administrator changed the same account at the same moment (e.g. granted the same role)
ACCOUNT_RACE = LostRace(stale=_l("Another administrator changed this account at the same moment. Nothing was "
                                 "changed; here is its current state."))

#: refused or lost, an account change goes back to the account's page with the reason
account_change = transaction("admin.user_detail", lost=ACCOUNT_RACE, abort_on=())


def _form_reason(form) -> str:
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return _("The form was incomplete.")


@bp.get("/")
@admin_required
def index():
    return redirect(url_for("admin.users"))


@bp.get("/users")
@admin_required
def users():
    """All accounts, searchable by name or email and filterable by role and status."""
    form = UserFilterForm(request.args)
    query = db.select(User).order_by(User.created_at.desc(), User.id.desc())
    if form.validate():
        if form.q.data:
            needle = form.q.data.lower()
            query = query.where(or_(func.lower(User.email).contains(needle, autoescape=True),
                                    func.lower(User.name).contains(needle, autoescape=True)))
        if form.role.data:
            query = query.where(User.roles.any(UserRole.role == form.role.data))
        if form.status.data:
            query = query.where(User.active.is_(form.status.data == "active"))
    page = db.paginate(query, page=page_arg(), per_page=current_app.config.get("PAGE_SIZE", 20),
                       max_per_page=100, error_out=False)
    filtered = bool(request.args.get("q") or request.args.get("role") or request.args.get("status"))
    return render_template("admin/users.html", form=form, page=page, filtered=filtered)


@bp.get("/users/<int:user_id>")
@admin_required
def user_detail(user_id: int):
    """One account: status, roles, organizations and its recent audit trail."""
    user = get_or_404(User, user_id)
    events = db.session.scalars(db.select(AuditEvent).where(
        or_((AuditEvent.target_type == "users") & (AuditEvent.target_id == user.id),
            AuditEvent.actor_id == user.id)).order_by(AuditEvent.id.desc()).limit(20)).all()
    return render_template("admin/user_detail.html", user=user, events=events,
                           grant_form=GrantRoleForm(), action_form=ActionForm(),
                           active_form=ActiveForm(), is_self=user.id == current_user.id)


@bp.post("/users/<int:user_id>/active")
@admin_required
@account_change
def set_active(user_id: int):
    """Activate or deactivate an account (deactivation signs the user out everywhere)."""
    user = get_or_404(User, user_id)
    form = ActiveForm()
    if not form.validate_on_submit():
        abort(400, _form_reason(form))
    active = form.active.data == "1"
    changed = ops.set_active(current_user._get_current_object(), user, active)
    commit()
    if changed:
        flash(_("%(name)s can sign in again.", name=user.name) if active
              else _("%(name)s has been deactivated and signed out.", name=user.name), "success")
    return _back_to(user)


@bp.post("/users/<int:user_id>/roles")
@admin_required
@account_change
def grant_role(user_id: int):
    """Grant a role; coordinators can be limited to one hub city."""
    user = get_or_404(User, user_id)
    form = GrantRoleForm()
    if not form.validate_on_submit():
        abort(400, _form_reason(form))
    changed = ops.grant_role(current_user._get_current_object(), user, form.role.data, form.hub_city.data)
    commit()
    if changed:
        flash(_("Role %(role)s granted to %(name)s.", role=Role.label_of(form.role.data), name=user.name),
              "success")
    else:
        flash(_("%(name)s already has this role.", name=user.name), "info")
    return _back_to(user)


@bp.post("/users/<int:user_id>/roles/<role>/revoke")
@admin_required
@account_change
def revoke_role(user_id: int, role: str):
    """Revoke a role (not your own administrator role)."""
    user = get_or_404(User, user_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400, _form_reason(form))
    if role not in Role.values():
        abort(400, _("Unknown role."))
    changed = ops.revoke_role(current_user._get_current_object(), user, role)
    commit()
    if changed:
        flash(_("Role %(role)s revoked from %(name)s.", role=Role.label_of(role), name=user.name), "success")
    return _back_to(user)


@bp.get("/audit")
@admin_required
def audit():
    """Recent audit events, newest first, optionally filtered by action prefix (e.g. ``auth.``)."""
    form = AuditFilterForm(request.args)
    query = db.select(AuditEvent).order_by(AuditEvent.id.desc())
    if form.validate() and form.action.data:
        query = query.where(AuditEvent.action.startswith(form.action.data, autoescape=True))
    page = db.paginate(query, page=page_arg(), per_page=50, max_per_page=100, error_out=False)
    actor_ids = {e.actor_id for e in page.items if e.actor_id is not None}
    actors = ({u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_(actor_ids)))}
              if actor_ids else {})
    return render_template("admin/audit.html", form=form, page=page, actors=actors)
