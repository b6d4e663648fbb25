"""Voucher pages: the firm's vouchers with balances, the issue form for hub cities, a voucher page with its
ledger and the redemption form (choose one of the firm's signed contracts)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.exc import OperationalError

from ..accounts.models import Organization
from ..core.access import MAX_ID, get_or_404
from ..core.enums import HubCity
from ..core.scope import coordinator_scope_of
from ..core.transaction import STAY, LostRace, commit, transaction
from ..core.workflow import RACE_ERRORS
from ..extensions import db
from ..pairings.models import Pairing
from . import operations as ops
from .forms import IssueForm, RedeemForm, RevokeForm
from .models import EntryKind, Voucher, VoucherStatus, issuing_cities

bp = Blueprint("vouchers", __name__, url_prefix="/vouchers")


@bp.app_template_filter("voucher_label")
def voucher_label(value):
    return VoucherStatus.label_of(value)


@bp.app_template_filter("entry_label")
def entry_label(value):
    return EntryKind.label_of(value)


@bp.get("")
@login_required
def index():
    """The firm's vouchers (members), or the vouchers of the coordinator's hub cities."""
    scope, cities = coordinator_scope_of(current_user), issuing_cities(current_user)
    conditions = []
    if current_user.organization_ids:
        conditions.append(Voucher.organization_id.in_(current_user.organization_ids))
    if not scope.is_none:
        conditions.append(scope.where(Voucher.hub_city))
    vouchers = db.session.scalars(select(Voucher).where(or_(*conditions)).order_by(Voucher.created_at.desc())
                                  .limit(500)).all() if conditions else []
    return render_template("vouchers/index.html", vouchers=vouchers, can_issue=bool(cities))


def _issue_form() -> IssueForm:
    form = IssueForm()
    firms = db.session.execute(select(Organization.id, Organization.name).where(
        Organization.kind == "enterprise").order_by(Organization.name)).all()
    form.organization_id.choices = [(i, n) for i, n in firms]
    form.hub_city.choices = [(c, HubCity.label_of(c)) for c in issuing_cities(current_user)]
    return form


@bp.route("/issue", methods=["GET", "POST"])
@login_required
def issue():
    if not issuing_cities(current_user):  # empty unless the user coordinates (or administers) a hub city
        abort(403, _("Only coordinators of a hub city (or administrators) may issue vouchers."))
    form = _issue_form()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("vouchers/issue.html", form=form), 400
        org = db.session.get(Organization, form.organization_id.data)
        with transaction(abort_on=()) as tx:
            voucher = ops.issue_voucher(current_user, org, amount=form.amount.data, expires_on=form.expires_on.data,
                                        hub_city=form.hub_city.data, note=form.note.data or None)
            vid = voucher.id
            commit()
        if tx.failed:
            return render_template("vouchers/issue.html", form=form), tx.status
        flash(_("Voucher issued."), "success")
        return redirect(url_for("vouchers.detail", voucher_id=vid), code=303)
    return render_template("vouchers/issue.html", form=form)


def _load(voucher_id: int) -> Voucher:
    voucher = get_or_404(Voucher, voucher_id)
    if not voucher.can_view(current_user):
        abort(404)
    return voucher


def _redeem_form(voucher: Voucher) -> tuple[RedeemForm, list]:
    form = RedeemForm()
    pairings = ops.eligible_pairings([voucher.organization_id])
    rows = []
    for p in pairings:
        room = p.contract_amount - ops.redeemed_on_pairing(p.id)
        rows.append((p, room))
    form.pairing_id.choices = [(p.id, f"#{p.id} {p.need.title} · ¥{room:,.2f}") for p, room in rows if room > 0]
    return form, rows


def _render(voucher: Voucher, form=None, status: int = 200):
    redeem_form, rows = _redeem_form(voucher)
    return render_template("vouchers/detail.html", voucher=voucher, redeem_form=form or redeem_form,
                           contracts=rows, revoke_form=RevokeForm(),
                           can_redeem=voucher.can_redeem(current_user) and voucher.display_status == "active",
                           can_revoke=voucher.can_administer(current_user) and voucher.status == "active",
                           provider_city=ops.provider_hub_city), status


@bp.get("/<int:voucher_id>")
@login_required
def detail(voucher_id: int):
    return _render(_load(voucher_id))


#: two redemptions of one voucher at once: the database refuses the second (constraint, or SQLite's lock)
REDEEMED_MEANWHILE = LostRace(
    stale=_l("Another redemption of this voucher was being recorded at the same moment. Nothing was redeemed; "
             "please check the balance and try again."), errors=(*RACE_ERRORS, OperationalError))


@bp.post("/<int:voucher_id>/redeem")
@login_required
def redeem(voucher_id: int):
    voucher = _load(voucher_id)
    if not voucher.can_redeem(current_user):
        abort(403, _("Only members of the enterprise holding this voucher may redeem it."))
    form, _rows = _redeem_form(voucher)
    if not form.validate_on_submit():
        return _render(voucher, form=form, status=400)
    pid = form.pairing_id.data
    pairing = db.session.get(Pairing, pid) if 0 < pid <= MAX_ID else None
    with transaction(lost=REDEEMED_MEANWHILE, lost_back=STAY, abort_on=()) as tx:
        entry = ops.redeem(voucher, pairing, form.amount.data, current_user)
        amount = entry.amount
        commit()
    if tx.failed:
        return _render(_load(voucher_id), form=form, status=tx.status)
    flash(_("%(amount)s CNY redeemed.", amount=amount), "success")
    return redirect(url_for("vouchers.detail", voucher_id=voucher_id), code=303)


@bp.post("/<int:voucher_id>/revoke")
@login_required
@transaction("vouchers.detail", abort_on=())
def revoke(voucher_id: int):
    voucher = _load(voucher_id)
    if not voucher.can_administer(current_user):
        abort(403, _("Only coordinators of the issuing hub city (or administrators) may revoke it."))
    form = RevokeForm()
    if not form.validate_on_submit():
        flash(_("Give a reason for revoking."), "error")
        return _render(voucher, status=400)
    ops.revoke(voucher, current_user, form.reason.data)
    commit()
    flash(_("Voucher revoked; its remaining balance is void."), "success")
    return redirect(url_for("vouchers.detail", voucher_id=voucher_id), code=303)
