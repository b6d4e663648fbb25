"""Challenge workflow. Each function checks permission and state, audits, flushes; the caller commits."""
from __future__ import annotations

from decimal import Decimal

from blinker import ANY
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core import audit
from ..core.access import MAX_ID
from ..core.enums import Visibility
from ..core.statemachine import StateMachine
from ..core.time import utcnow
from ..core.workflow import WorkflowError
from ..extensions import db
from ..listings.signals import listing_withdrawn
# at module level, so that pairings' receiver of listing_withdrawn is always connected (and runs) before ours
from ..pairings.operations import need_owner_users
from .models import Bid, BidStatus, Challenge, ChallengeStatus as S

TRANSITIONS = {
    S.OPEN: {S.SHORTLISTING, S.CANCELLED},
    S.SHORTLISTING: {S.AWARDED, S.CANCELLED},
    S.AWARDED: set(),
    S.CANCELLED: set(),
}


MACHINE = StateMachine(TRANSITIONS, labels=S, noun="challenge",
                       refusal=_l("A challenge cannot go from “%(frm)s” to “%(to)s”."))


def _require_manager(challenge: Challenge, user) -> None:
    if not challenge.can_manage(user):
        raise WorkflowError(_("Only the publishing enterprise or a coordinator of its hub city may manage this "
                              "challenge."), 403)


def can_publish_for(need, user) -> bool:
    return need.is_owned_by(user) or need.can_moderate(user)


def publish_challenge(need, user, *, reward: Decimal, deadline, terms: str) -> Challenge:
    """A firm (for its own published need) or a hub-city coordinator publishes a challenge."""
    if not can_publish_for(need, user):
        raise WorkflowError(_("Only the enterprise that posted this need or a coordinator of its hub city may "
                              "publish a challenge for it."), 403)
    if not need.is_published:
        raise WorkflowError(_("A challenge needs a published technology need."))
    if need.visibility != Visibility.PUBLIC:
        # bidders could not open a challenge on a need that only coordinators may see
        raise WorkflowError(_("A challenge is a public call for bids: make the need visible to everyone "
                              "before publishing a challenge for it."))
    if reward is None or reward <= 0:
        raise WorkflowError(_("The reward must be more than zero."), 400)
    if deadline <= utcnow():
        raise WorkflowError(_("The deadline must be in the future."), 400)
    live = db.session.scalar(db.select(Challenge.id).where(
        Challenge.need_id == need.id, Challenge.status.in_([S.OPEN.value, S.SHORTLISTING.value])))
    if live is not None:
        raise WorkflowError(_("This need already has a live challenge."))
    as_firm = need.is_owned_by(user)
    challenge = Challenge(need_id=need.id, need=need, publisher="firm" if as_firm else "hub_city",
                          organization_id=need.organization_id if as_firm else None,
                          hub_city=need.hub_city,
                          created_by_id=user.id, reward=reward, deadline=deadline, terms=terms,
                          status=S.OPEN.value)
    if not as_firm and not challenge.hub_city:
        raise WorkflowError(_("A hub-city challenge needs a need with a hub city."), 400)
    db.session.add(challenge)
    db.session.flush()
    audit.record("challenge.publish", actor=user, target=challenge, to_state=S.OPEN,
                 comment=f"need {need.id}, reward {reward}")
    return challenge


def submit_bid(challenge: Challenge, user, *, approach: str, team_members: str, budget: Decimal,
               timeline_months: int) -> Bid:
    """Create or edit the user's bid; allowed while the challenge is open and before its deadline."""
    if not challenge.can_bid(user):
        raise WorkflowError(_("Only experts and research teams outside the need's own organization may bid."),
                            403)
    if not challenge.is_open_for_bids:
        raise WorkflowError(_("This challenge no longer accepts bids (deadline passed or bidding closed)."))
    if budget is None or budget < 0 or not (1 <= (timeline_months or 0) <= 120) or not approach:
        raise WorkflowError(_("Give an approach, a budget of zero or more and a timeline of 1 to 120 months."),
                            400)
    bid = db.session.scalar(db.select(Bid).where(Bid.challenge_id == challenge.id, Bid.bidder_id == user.id))
    action = "bid.edit"
    if bid is None:
        org = user.primary_organization
        bid = Bid(challenge_id=challenge.id, bidder_id=user.id, organization_id=org.id if org else None,
                  status=BidStatus.SUBMITTED.value)
        db.session.add(bid)
        action = "bid.submit"
    elif bid.status != BidStatus.SUBMITTED:
        raise WorkflowError(_("This bid has already been reviewed and can no longer be changed."))
    bid.approach, bid.team_members, bid.budget, bid.timeline_months = approach, team_members or "", budget, \
        timeline_months
    db.session.flush()
    audit.record(action, actor=user, target=bid, to_state=bid.status, comment=f"challenge {challenge.id}")
    if action == "bid.submit":  # a new bid; edits of it until the deadline are not announced again
        from ..notifications.operations import notify
        notify([u for u in need_owner_users(challenge.need) if u.id != user.id], "challenge.bid",
               _l("New bid on the challenge “%(title)s”", title=challenge.need.title),
               _l("%(who)s submitted a bid. Open the challenge to review it.", who=user.name),
               link=f"/challenges/{challenge.id}")
    return bid


def start_shortlisting(challenge: Challenge, user) -> None:
    """Close bidding (even before the deadline) and start picking."""
    _require_manager(challenge, user)
    MACHINE.move(challenge, S.SHORTLISTING, user)
    db.session.flush()


def _bid_of(challenge: Challenge, bid_id) -> Bid:
    if isinstance(bid_id, int):
        bid = db.session.get(Bid, bid_id) if 0 < bid_id <= MAX_ID else None
    else:
        bid = bid_id
    if bid is None or bid.challenge_id != challenge.id:
        raise WorkflowError(_("This bid does not belong to this challenge."), 404)
    return bid


def shortlist_bid(challenge: Challenge, bid, user) -> Bid:
    _require_manager(challenge, user)
    bid = _bid_of(challenge, bid)
    if challenge.status != S.SHORTLISTING:
        raise WorkflowError(_("Close bidding before shortlisting."))
    if bid.status != BidStatus.SUBMITTED:
        raise WorkflowError(_("Only a submitted bid can be shortlisted."))
    bid.status = BidStatus.SHORTLISTED.value
    audit.record("bid.shortlist", actor=user, target=bid, from_state=BidStatus.SUBMITTED,
                 to_state=BidStatus.SHORTLISTED)
    db.session.flush()
    return bid


def award(challenge: Challenge, bid, user, comment: str | None = None) -> Bid:
    """Pick the one winner among the shortlisted bids; the challenge closes and every other bid is not selected."""
    _require_manager(challenge, user)
    bid = _bid_of(challenge, bid)
    if bid.status != BidStatus.SHORTLISTED:
        raise WorkflowError(_("Only a shortlisted bid can win."))
    MACHINE.move(challenge, S.AWARDED, user, comment=comment)
    challenge.awarded_at = challenge.closed_at = utcnow()
    for other in challenge.bids:
        if other.id != bid.id and other.status in (BidStatus.SUBMITTED, BidStatus.SHORTLISTED):
            audit.record("bid.not_selected", actor=user, target=other, from_state=other.status,
                         to_state=BidStatus.NOT_SELECTED)
            other.status = BidStatus.NOT_SELECTED.value
    audit.record("bid.won", actor=user, target=bid, from_state=bid.status, to_state=BidStatus.WON)
    bid.status = BidStatus.WON.value
    db.session.flush()
    from ..notifications.operations import notify
    notify([bid.bidder], "challenge.won", _l("Your bid won the challenge “%(title)s”", title=challenge.need.title),
           link=f"/challenges/{challenge.id}")
    return bid


def cancel(challenge: Challenge, user, reason: str) -> None:
    _require_manager(challenge, user)
    _cancel(challenge, user, reason)


def cancel_for_withdrawn_need(need, actor) -> int:
    """The need was closed or deleted: its live challenges (open or shortlisting) are cancelled, their
    bids not selected. Whoever may withdraw the need ends its calls for bids with it."""
    live = db.session.scalars(db.select(Challenge).where(
        Challenge.need_id == need.id, Challenge.status.in_([S.OPEN.value, S.SHORTLISTING.value]))).all()
    for challenge in live:
        _cancel(challenge, actor, _("The need was withdrawn."))
    return len(live)


@listing_withdrawn.connect_via(ANY, weak=False)
def _on_listing_withdrawn(listing, actor) -> None:
    if listing.kind_name == "need":
        cancel_for_withdrawn_need(listing, actor)


def _cancel(challenge: Challenge, user, reason: str) -> None:
    if not reason:
        raise WorkflowError(_("Give a reason for cancelling."), 400)
    MACHINE.move(challenge, S.CANCELLED, user, comment=reason)
    challenge.closed_at, challenge.close_reason = utcnow(), reason
    for bid in challenge.bids:
        if bid.status in (BidStatus.SUBMITTED, BidStatus.SHORTLISTED):
            audit.record("bid.not_selected", actor=user, target=bid, from_state=bid.status,
                         to_state=BidStatus.NOT_SELECTED, comment=reason)
            bid.status = BidStatus.NOT_SELECTED.value
    db.session.flush()


def invite_matching_experts(challenge: Challenge, user, k: int = 10) -> int | None:
    """Notify the experts behind the engine's best-matching capabilities. None when matching is off."""
    _require_manager(challenge, user)
    if challenge.status != S.OPEN:
        raise WorkflowError(_("Only an open challenge can invite experts."))
    from ..matching_service import get_engine
    from ..suggestions.queries import capabilities_for_need
    if get_engine() is None:
        return None
    users = []
    for suggestion in capabilities_for_need(challenge.need, k=k, evidence=False):
        cap = suggestion.listing
        target = cap.expert.user if cap.expert is not None else cap.created_by
        # only those who can open the link: can_bid alone ignores the need's visibility
        if target is not None and challenge.can_bid(target) and challenge.can_view(target):
            users.append(target)
    from ..notifications.operations import notify
    notes = notify(users, "challenge.invite",
                   _l("You are invited to bid: %(title)s", title=challenge.need.title),
                   _l("Reward: %(reward)s CNY. Deadline: %(deadline)s.", reward=challenge.reward,
                     deadline=challenge.deadline.strftime("%Y-%m-%d")),
                   link=f"/challenges/{challenge.id}")
    challenge.invited_at = utcnow()
    audit.record("challenge.invite", actor=user, target=challenge, comment=f"{len(notes)} experts invited")
    db.session.flush()
    return len(notes)
