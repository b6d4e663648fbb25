"""Account pages: register, log in/out, password, profile, organizations. Thin: rules live in operations."""
from __future__ import annotations

from flask import (Blueprint, abort, flash, make_response, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required, logout_user

from ..core.access import get_or_404
from ..core.enums import OrgKind
from ..core.transaction import LostRace, commit, transaction
from ..core.workflow import WorkflowError
from ..extensions import configured_limit, db, limiter
from . import operations as ops
from .sessions import clear_keeping_language, enforce_timeouts, start_session
from .forms import (ChangePasswordForm, ForgotPasswordForm, LoginForm, OrganizationForm, ProfileForm,
                    RegisterForm, ResetPasswordForm)
from .models import MembershipRequest, Organization

bp = Blueprint("accounts", __name__)
bp.before_app_request(enforce_timeouts)


def _submitted_email() -> str:
    return "login-email:" + ops.normalize_email(request.form.get("email"))[:254]


def _form_again(template: str, form, **context):
    """A breached limit answers with the same form and the reason (429), not a bare error page."""
    flash(_("Too many attempts. Wait a few minutes and try again."), "error")
    return make_response(render_template(template, form=form, **context), 429)


def _login_refused(_limit):
    ops.record_login_throttled(request.form.get("email"))
    commit()
    return _form_again("accounts/login.html", LoginForm(), next_url=ops.safe_next(request.values.get("next")))


def _register_refused(_limit):
    return _form_again("accounts/register.html", RegisterForm(), affiliations=_affiliation_names())


def _affiliation_names() -> list[str]:
    return db.session.scalars(db.select(Organization.name).where(
        Organization.kind != OrgKind.ENTERPRISE.value).order_by(Organization.name).limit(500)).all()


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(configured_limit("RATELIMIT_REGISTER"), methods=["POST"],
               on_breach=_register_refused)
def register():
    """Create an enterprise-member or expert account and sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("listings.my_listings"))
    form = RegisterForm()
    status = 200
    if form.validate_on_submit():
        with transaction(form=form, abort_on=()) as tx:  # refused: shown next to its field or on top
            user = ops.register_user(form.data)
            commit()
        if tx.failed:
            status = 400
        else:
            start_session(user)
            join_request = ops.pending_join_request(user)
            if join_request is not None:
                flash(_("Welcome! Your request to join %(org)s has been sent to its managers. Until one of them "
                        "approves it, you cannot post or see anything on its behalf.",
                        org=join_request.organization.name), "info")
            else:
                flash(_("Welcome! Your account is ready."), "success")
            return redirect(url_for("listings.my_listings"))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/register.html", form=form,
                           affiliations=_affiliation_names()), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(configured_limit("RATELIMIT_LOGIN"), methods=["POST"], on_breach=_login_refused)
@limiter.limit(configured_limit("RATELIMIT_LOGIN_FAILURES"), methods=["POST"], key_func=_submitted_email,
               deduct_when=lambda response: response.status_code == 401, on_breach=_login_refused)
def login():
    """Sign in by email and password; ``next`` may only point to a page on this site."""
    next_url = ops.safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("listings.my_listings"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = ops.authenticate(form.email.data, form.password.data)
        except WorkflowError as exc:
            commit()  # keep the audit entry of the failure
            flash(exc.reason, "error")
            status = exc.status if exc.status in (401, 403) else 400
        else:
            ops.record_login(user)
            commit()
            start_session(user, remember=bool(form.remember.data))
            flash(_("Welcome back, %(name)s.", name=user.name), "success")
            return redirect(next_url or url_for("listings.my_listings"))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/login.html", form=form, next_url=next_url), status


@bp.post("/logout")
def logout():
    """End the session here and on the server (a copied session cookie stops working)."""
    if current_user.is_authenticated:
        ops.record_logout(current_user._get_current_object())
        commit()
        logout_user()
    session.clear()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("main.index"))


def _forgot_refused(_limit):
    return _form_again("accounts/forgot_password.html", ForgotPasswordForm())


def _submitted_reset_email() -> str:
    return "reset-email:" + ops.normalize_email(request.form.get("email"))[:254]


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(configured_limit("RATELIMIT_PASSWORD_RESET"), methods=["POST"], on_breach=_forgot_refused)
@limiter.limit(configured_limit("RATELIMIT_PASSWORD_RESET"), methods=["POST"], key_func=_submitted_reset_email,
               on_breach=_forgot_refused)
def forgot_password():
    """Ask for a password reset link by email; the answer is the same whether the account exists or not."""
    if current_user.is_authenticated:
        return redirect(url_for("accounts.change_password"))
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        ops.request_password_reset(form.email.data)
        commit()
        flash(_("If an account uses this address, we have sent it a link to choose a new password. The link "
                "works for one hour."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot_password.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Choose a new password from an emailed link; every session of the account ends, its API tokens too."""
    try:
        user = ops.user_for_reset_token(token)
    except WorkflowError as exc:
        flash(exc.reason, "error")
        return redirect(url_for("accounts.forgot_password"))
    form = ResetPasswordForm(email=user.email)
    if form.validate_on_submit():
        with transaction(form=form, abort_on=()) as tx:
            revoked = ops.reset_password(user, form.password.data)
            commit()
        if not tx.failed:
            if current_user.is_authenticated:
                logout_user()
            clear_keeping_language()
            flash(_("Your password has been changed. Log in with the new one."), "success")
            if revoked:
                flash(ngettext("%(num)d API token was revoked; create a new one on your profile if you need it.",
                               "%(num)d API tokens were revoked; create new ones on your profile if you need "
                               "them.", revoked), "info")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form, token=token), (
        400 if request.method == "POST" else 200)


@bp.route("/profile/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password; every other session of this account ends."""
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        user = current_user._get_current_object()
        with transaction(form=form, abort_on=()) as tx:
            ops.change_password(user, form.current_password.data, form.password.data)
            commit()
        if tx.failed:
            status = 400 if tx.status != 403 else 403
        else:
            start_session(user)
            flash(_("Your password has been changed. Other devices have been signed out."), "success")
            return redirect(url_for("accounts.profile"))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/change_password.html", form=form), status


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    """Your name, language and (for experts) expert profile; links to the organizations you manage."""
    user = current_user._get_current_object()
    expert = user.expert_profile
    if request.method == "GET":
        data = {"name": user.name, "locale": user.locale}
        if expert is not None:
            data.update(title=expert.title, affiliation=expert.affiliation_name, fields=expert.fields,
                        languages=expert.languages, bio=expert.bio,
                        max_active_pairings=expert.max_active_pairings)
        form = ProfileForm(data=data)
    else:
        form = ProfileForm()
    if expert is None:
        form.drop_expert_fields()
    status = 200
    if form.validate_on_submit():
        with transaction(form=form, abort_on=()) as tx:
            ops.update_profile(user, form.data)
            commit()
        if tx.failed:
            status = 400
        else:
            session["lang"] = user.locale
            flash(_("Your profile has been saved."), "success")
            return redirect(url_for("accounts.profile"))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/profile.html", form=form, user=user, expert=expert,
                           join_requests=ops.open_join_requests(user),
                           affiliations=_affiliation_names() if expert is not None else []), status


@bp.get("/organizations/<int:org_id>")
def organization(org_id: int):
    """Public page of an organization."""
    org = get_or_404(Organization, org_id)
    can_edit = org.can_edit(current_user)
    join_requests = db.session.scalars(db.select(MembershipRequest).filter_by(
        organization_id=org.id, status="pending").order_by(MembershipRequest.created_at)).all() if can_edit else []
    return render_template("accounts/organization.html", org=org, can_edit=can_edit, join_requests=join_requests)


#: two managers decided the same request at once
JOIN_DECIDED = LostRace(stale=_l("This request has already been decided."), category="error")


@bp.post("/organizations/<int:org_id>/join-requests/<int:request_id>/<any(approve, decline):decision>")
@login_required
@transaction("accounts.organization", lost=JOIN_DECIDED, abort_on=(), code=302)
def decide_join_request(org_id: int, request_id: int, decision: str):
    """A manager of the organization (or an admin) lets a requester in as a member, or declines."""
    join_request = get_or_404(MembershipRequest, request_id)
    if join_request.organization_id != org_id:
        abort(404)
    if not join_request.organization.can_edit(current_user):
        abort(403, _("Only the organization's managers can decide who joins it."))
    ops.decide_join_request(join_request, current_user._get_current_object(), decision == "approve")
    commit()
    flash(_("%(name)s is now a member.", name=join_request.user.name) if decision == "approve"
          else _("The request of %(name)s was declined.", name=join_request.user.name), "success")
    return redirect(url_for("accounts.organization", org_id=org_id))


@bp.route("/organizations/<int:org_id>/edit", methods=["GET", "POST"])
@login_required
def edit_organization(org_id: int):
    """Edit an organization's details (its managers and admins only)."""
    org = get_or_404(Organization, org_id)
    if not org.can_edit(current_user):
        abort(403, _("Only the organization's managers can edit it."))
    form = OrganizationForm(obj=org) if request.method == "GET" else OrganizationForm()
    if request.method == "GET":
        form.hub_city.data = org.hub_city or ""
    status = 200
    if form.validate_on_submit():
        with transaction(form=form, abort_on=()) as tx:
            ops.update_organization(org, current_user._get_current_object(), form.data)
            commit()
        if tx.failed:
            status = tx.status if tx.status in (403, 409) else 400
        else:
            flash(_("The organization has been saved."), "success")
            return redirect(url_for("accounts.organization", org_id=org.id))
    elif request.method == "POST":
        status = 400
    return render_template("accounts/organization_edit.html", form=form, org=org), status
