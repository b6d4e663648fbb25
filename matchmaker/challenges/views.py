"""揭榜挂帅 pages: the public list, a challenge page with the bid form, and management actions."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from ..core.access import get_or_404
from ..core.time import end_of_programme_day
from ..core.transaction import STAY, LostRace, commit, transaction
from ..extensions import db
from ..listings.models import Need
from ..listings.views import load_listing
from . import operations as ops
from .forms import BidForm, CancelForm, ChallengeForm
from .models import Bid, BidStatus, Challenge, ChallengeStatus

bp = Blueprint("challenges", __name__, url_prefix="/challenges")


@bp.app_template_filter("challenge_label")
def challenge_label(value):
    return ChallengeStatus.label_of(value)


@bp.app_template_filter("bid_label")
def bid_label(value):
    return BidStatus.label_of(value)


def _load(challenge_id: int) -> Challenge:
    challenge = get_or_404(Challenge, challenge_id)
    if not challenge.can_view(current_user):
        abort(404)
    return challenge


CHALLENGE_RACE = LostRace(stale=_l("Someone else changed this challenge in the meantime. Nothing was saved; "
                                    "please check it and try again."))


@bp.get("")
def index():
    """揭榜挂帅榜单: live challenges first, then closed ones."""
    status = request.args.get("status")
    stmt = db.select(Challenge).join(Need, Challenge.need_id == Need.id).where(Need.deleted_at.is_(None))
    if status in ChallengeStatus.values():
        stmt = stmt.where(Challenge.status == status)
    stmt = stmt.order_by((Challenge.status == ChallengeStatus.OPEN.value).desc(), Challenge.deadline.asc())
    challenges = [c for c in db.session.scalars(stmt.limit(300)) if c.can_view(current_user)]
    # the signed-in firm's published needs without a live challenge: where "publish a challenge" starts
    publishable = []
    if current_user.is_authenticated and current_user.organization_ids:
        from ..core.enums import Visibility
        from ..listings.queries import owned_listings
        # which needs have a live challenge is asked of the database, not of the (filtered, capped) list above
        live = db.select(Challenge.need_id).where(Challenge.status.in_([ChallengeStatus.OPEN.value,
                                                                     ChallengeStatus.SHORTLISTING.value]))
        publishable = db.session.scalars(owned_listings(Need, current_user).where(
            Need.status == "published", Need.visibility == Visibility.PUBLIC.value,
            Need.id.not_in(live)).limit(50)).all()
    return render_template("challenges/index.html", challenges=challenges, status=status,
                           statuses=ChallengeStatus.choices(), publishable=publishable)


@bp.route("/new/<int:need_id>", methods=["GET", "POST"])
@login_required
def create(need_id: int):
    need = load_listing(Need, need_id)
    if not ops.can_publish_for(need, current_user):
        abort(403, _("Only the enterprise that posted this need or a coordinator of its hub city may publish a "
                     "challenge for it."))
    form = ChallengeForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("challenges/form.html", form=form, need=need), 400
        deadline = end_of_programme_day(form.deadline.data)
        with transaction(lost=CHALLENGE_RACE, lost_back=STAY, abort_on=()) as tx:
            challenge = ops.publish_challenge(need, current_user, reward=form.reward.data, deadline=deadline,
                                              terms=form.terms.data)
            cid = challenge.id
            commit()
        if tx.failed:
            return render_template("challenges/form.html", form=form, need=need), tx.status
        flash(_("Challenge published."), "success")
        return redirect(url_for("challenges.detail", challenge_id=cid), code=303)
    return render_template("challenges/form.html", form=form, need=need)


def _render_detail(challenge: Challenge, bid_form=None, status: int = 200):
    own_bid = None
    if current_user.is_authenticated:
        own_bid = db.session.scalar(db.select(Bid).where(Bid.challenge_id == challenge.id,
                                                         Bid.bidder_id == current_user.id))
    if bid_form is None:
        bid_form = BidForm(obj=own_bid) if own_bid else BidForm()
    manage = challenge.can_manage(current_user)
    return render_template("challenges/detail.html", challenge=challenge, bid_form=bid_form, own_bid=own_bid,
                           manage=manage, can_bid=challenge.can_bid(current_user), cancel_form=CancelForm(),
                           bids=challenge.bids if manage else []), status


@bp.get("/<int:challenge_id>")
def detail(challenge_id: int):
    return _render_detail(_load(challenge_id))


#: a refused or lost change goes back to the challenge's page with the reason
challenge_action = transaction("challenges.detail", lost=CHALLENGE_RACE, abort_on=(403, 404))


@bp.post("/<int:challenge_id>/bid")
@login_required
@challenge_action
def bid(challenge_id: int):
    """Submit or edit the signed-in expert's bid."""
    challenge = _load(challenge_id)
    if not challenge.can_bid(current_user):
        abort(403, _("Only experts and research teams outside the need's own organization may bid."))
    form = BidForm()
    if not form.validate_on_submit():
        return _render_detail(challenge, bid_form=form, status=400)
    ops.submit_bid(challenge, current_user, approach=form.approach.data, team_members=form.team_members.data,
                   budget=form.budget.data, timeline_months=form.timeline_months.data)
    commit()
    flash(_("Your bid has been saved. You can change it until the deadline."), "success")
    return redirect(url_for("challenges.detail", challenge_id=challenge_id), code=303)


def _manage(challenge_id: int, action, success: str):
    challenge = _load(challenge_id)
    if not challenge.can_manage(current_user):
        abort(403, _("Only the publishing enterprise or a coordinator of its hub city may manage this challenge."))
    if action(challenge) is not False:
        commit()
        flash(success, "success")
    return redirect(url_for("challenges.detail", challenge_id=challenge_id), code=303)


@bp.post("/<int:challenge_id>/shortlisting")
@login_required
@challenge_action
def start_shortlisting(challenge_id: int):
    return _manage(challenge_id, lambda c: ops.start_shortlisting(c, current_user),
                   _("Bidding is closed; you can now shortlist bids."))


@bp.post("/<int:challenge_id>/bids/<int:bid_id>/shortlist")
@login_required
@challenge_action
def shortlist(challenge_id: int, bid_id: int):
    return _manage(challenge_id, lambda c: ops.shortlist_bid(c, bid_id, current_user), _("Bid shortlisted."))


@bp.post("/<int:challenge_id>/bids/<int:bid_id>/award")
@login_required
@challenge_action
def award(challenge_id: int, bid_id: int):
    return _manage(challenge_id, lambda c: ops.award(c, bid_id, current_user),
                   _("The winner has been chosen and the challenge is closed."))


@bp.post("/<int:challenge_id>/cancel")
@login_required
@challenge_action
def cancel(challenge_id: int):
    challenge = _load(challenge_id)
    if not challenge.can_manage(current_user):
        abort(403, _("Only the publishing enterprise or a coordinator of its hub city may manage this challenge."))
    form = CancelForm()
    if not form.validate_on_submit():
        flash(_("Give a reason for cancelling."), "error")
        return _render_detail(challenge, status=400)
    return _manage(challenge_id, lambda c: ops.cancel(c, current_user, form.reason.data),
                   _("The challenge has been cancelled."))


@bp.post("/<int:challenge_id>/invite")
@login_required
@challenge_action
def invite(challenge_id: int):
    def action(challenge):
        count = ops.invite_matching_experts(challenge, current_user)
        if count is None:
            flash(_("Matching is switched off on this server; no experts were invited."), "warning")
            return False
        return True
    return _manage(challenge_id, action, _("The best-matching experts have been invited."))
