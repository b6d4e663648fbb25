"""The pairing lifecycle. Every transition goes through here: permission → state → mutate → audit → notify
→ flush. Functions never commit: the caller (one request, one CLI command) owns the transaction, and
notifications are emailed only after it commits.

    suggested | proposed ──respond(both interested)──► pending_review ──judge──► approved | rejected
    suggested | proposed ──respond(decline)──► declined
    approved ──schedule_meeting──► meeting_scheduled (rescheduling keeps the state)
    approved | meeting_scheduled ──record_outcome──► in_progress | contract_signed | failed
    in_progress ──record_outcome──► contract_signed | failed
    meeting_scheduled ──cancel_meeting──► approved (only when the meeting itself was removed, e.g. a fair's
                                           schedule was cleared; not in TRANSITIONS, so no other path takes it)
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..core import audit
from ..core.enums import ListingStatus
from ..core.forms import clean_text
from ..core.money import AmountError, parse_amount
from ..core.scope import coordinator_scope_of
from ..core.statemachine import StateMachine
from ..core.time import PROGRAMME_TZ, utcnow
from ..core.workflow import WorkflowError, lock_row
from ..extensions import db
from ..listings.signals import listing_withdrawn
from .models import (UNDOCKED_OPEN, ContractType, DeclineReason, DismissReason, NeedDismissal, Pairing,
                     PairingResponse, PairingSide, PairingState as P)

#: allowed transitions: from → to
TRANSITIONS: dict[str, set[str]] = {
    P.SUGGESTED: {P.PENDING_REVIEW, P.DECLINED},
    P.PROPOSED: {P.PENDING_REVIEW, P.DECLINED},
    P.PENDING_REVIEW: {P.APPROVED, P.REJECTED, P.DECLINED},  # declined: a listing withdrawn before judgment
    P.APPROVED: {P.MEETING_SCHEDULED, P.IN_PROGRESS, P.CONTRACT_SIGNED, P.FAILED},
    P.MEETING_SCHEDULED: {P.MEETING_SCHEDULED, P.IN_PROGRESS, P.CONTRACT_SIGNED, P.FAILED},
    P.IN_PROGRESS: {P.CONTRACT_SIGNED, P.FAILED},
    P.DECLINED: set(),
    P.REJECTED: set(),
    P.CONTRACT_SIGNED: set(),
    P.FAILED: set(),
}
OUTCOME_STATES = (P.IN_PROGRESS, P.CONTRACT_SIGNED, P.FAILED)
ORIGINS = ("engine", "coordinator", "need", "capability")


MACHINE = StateMachine(TRANSITIONS, labels=P, noun="pairing", field="state", touch="updated_at",
                       refusal=_l("A pairing cannot go from “%(frm)s” to “%(to)s”."))


def _text(value) -> str | None:
    """Free text from any caller: NUL characters (refused by PostgreSQL) and surrounding blanks removed."""
    return clean_text(value or "") or None


def _lock(pairing: Pairing) -> Pairing:
    """Take the pairing's row lock (PostgreSQL) or the database write lock (SQLite), then re-read the row and
    its responses, so a decision is made on what other requests have committed in the meantime."""
    locked = lock_row(Pairing, pairing.id)
    if locked is None:
        raise WorkflowError(_("This pairing no longer exists."), 404)
    db.session.expire(locked, ["responses"])
    return locked


def pairing_link(pairing: Pairing) -> str:
    return f"/pairings/{pairing.id}"


def _users(ids) -> list:
    from ..accounts.models import User
    ids = {i for i in ids if i is not None}
    if not ids:
        return []
    return list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))


def need_owner_users(need) -> list:
    """Who speaks for a need's firm: its poster and the managers of its organization."""
    from ..accounts.models import Membership
    ids = {need.created_by_id}
    if need.organization_id is not None:
        ids |= set(db.session.scalars(select(Membership.user_id).where(
            Membership.organization_id == need.organization_id, Membership.is_manager.is_(True))))
    return _users(ids)


def need_side_users(pairing: Pairing) -> list:
    return need_owner_users(pairing.need)


def capability_side_users(pairing: Pairing) -> list:
    return _users(pairing.capability_side_user_ids)


def scope_coordinators(pairing: Pairing) -> list:
    """Coordinators who may judge this pairing (hub-city scope or unscoped), not parties to it."""
    from ..accounts.queries import coordinators
    return [u for u in coordinators() if pairing.can_judge(u)]


def _notify(users, pairing: Pairing, kind: str, subject: str, body: str = "", exclude=None) -> None:
    from ..notifications.operations import notify
    exclude_id = getattr(exclude, "id", None)
    notify([u for u in users if u.id != exclude_id], f"pairing.{kind}", subject, body, link=pairing_link(pairing))


def _parties(pairing: Pairing) -> list:
    return need_side_users(pairing) + capability_side_users(pairing)


def _title(pairing: Pairing) -> str:
    other = pairing.capability.title if pairing.capability is not None else (
        pairing.expert.user.name if pairing.expert is not None else "")
    return f"{pairing.need.title} × {other}"


# -- creation ------------------------------------------------------------------------------------

def _existing(need, capability, expert) -> Pairing | None:
    stmt = select(Pairing).where(Pairing.need_id == need.id)
    if capability is not None:
        stmt = stmt.where(Pairing.capability_id == capability.id)
    else:
        stmt = stmt.where(Pairing.capability_id.is_(None), Pairing.expert_id == expert.id)
    return db.session.scalars(stmt).first()


def _member_ids(org_ids) -> set[int]:
    from ..accounts.models import Membership
    org_ids = {o for o in org_ids if o is not None}
    if not org_ids:
        return set()
    return set(db.session.scalars(select(Membership.user_id).where(Membership.organization_id.in_(org_ids))))


def need_side_people(need) -> set[int]:
    """Everyone who may answer for the need: its poster and the members of its organization."""
    return ({need.created_by_id} | _member_ids({need.organization_id})) - {None}


def capability_side_people(capability=None, expert=None) -> set[int]:
    """Everyone who may answer for the capability side: the capability's poster, the expert in person and the
    members of the capability's organization (see ``Pairing.is_on_side``)."""
    ids = set()
    if capability is not None:
        ids |= {capability.created_by_id} | _member_ids({capability.organization_id})
        if capability.expert is not None:
            ids.add(capability.expert.user_id)
    if expert is not None:
        ids.add(expert.user_id)
    return ids - {None}


def check_pairable(need, capability=None, expert=None) -> None:
    """Refuse pairings the rules forbid (raises WorkflowError with the reason)."""
    if capability is None and expert is None:
        raise WorkflowError(_("A pairing needs a capability or an expert."), 400)
    if need.is_deleted or need.status != ListingStatus.PUBLISHED:
        raise WorkflowError(_("Only published needs can be paired."), 409)
    if capability is not None and (capability.is_deleted or capability.status != ListingStatus.PUBLISHED):
        raise WorkflowError(_("Only published capabilities can be paired."), 409)
    if capability is not None and expert is not None and capability.expert_id not in (None, expert.id):
        raise WorkflowError(_("This capability belongs to another expert."), 400)
    org_ids = set()
    if capability is not None:
        org_ids.add(capability.organization_id)
    if expert is not None:
        org_ids.add(expert.affiliation_id)
    if need.organization_id is not None and need.organization_id in org_ids:
        raise WorkflowError(_("A need cannot be paired with its own organization."), 409)
    if need_side_people(need) & capability_side_people(capability, expert):
        # one person could answer for both sides and wave their own pairing through to the coordinator
        raise WorkflowError(_("Both sides of a pairing must be different people."), 409)
    exp = expert or (capability.expert if capability is not None else None)
    if exp is not None and need.organization_id is not None:
        from .models import ConflictOfInterest
        if db.session.scalar(select(ConflictOfInterest.id).where(
                ConflictOfInterest.expert_id == exp.id,
                ConflictOfInterest.organization_id == need.organization_id)) is not None:
            raise WorkflowError(_("The expert declared a conflict of interest with this organization."), 409)
    if _existing(need, capability, expert) is not None:
        raise WorkflowError(_("This pairing already exists."), 409)


def propose_pairing(need, capability=None, expert=None, *, by, origin: str | None = None,
                    score: float | None = None, evidence: dict | None = None, comment: str | None = None,
                    snapshot: bool = True) -> Pairing:
    """A coordinator, the firm (need side) or the expert (capability side) proposes a pairing.

    The proposer's own side counts as interested; the other side is notified. Without ``evidence``, the
    engine's match of the two is kept as it (``snapshot``; the demo seed, run before the index, skips it).
    """
    if expert is None and capability is not None:
        expert = capability.expert
    if by is None or not getattr(by, "is_authenticated", False):
        raise WorkflowError(_("Please sign in to propose a pairing."), 401)
    own_need = need.is_owned_by(by)
    own_cap = (capability is not None and capability.is_owned_by(by)) or (
        expert is not None and expert.user_id == by.id)
    coordinator = coordinator_scope_of(by).covers(need.hub_city)
    if origin is None:
        origin = "need" if own_need else "capability" if own_cap else "coordinator"
    if origin not in ORIGINS or origin == "engine":
        raise WorkflowError(_("Unknown origin of a pairing."), 400)
    allowed = {"need": own_need, "capability": own_cap, "coordinator": coordinator and not (own_need or own_cap)}
    if not allowed[origin]:
        raise WorkflowError(_("You may not propose this pairing."), 403)
    if score is not None and not (isinstance(score, (int, float)) and math.isfinite(score)):
        raise WorkflowError(_("The score must be a finite number."), 400)
    comment = _text(comment)
    check_pairable(need, capability, expert)
    if expert is not None and expert.user_id != by.id:  # the expert may take on more; nobody else for them
        _check_capacity(expert)
    if snapshot and evidence is None and capability is not None:
        # the judging coordinator sees why the engine would (or would not) pair them, also for a pairing a
        # firm or an expert proposed by hand: the engine's snapshot, taken now
        from ..suggestions.queries import match_for_pair
        match = match_for_pair(need, capability)
        if match is not None:
            evidence = match_to_json(match)
            score = float(match.score) if score is None else score
    pairing = Pairing(need=need, need_id=need.id, capability=capability,
                      capability_id=getattr(capability, "id", None), expert=expert,
                      expert_id=getattr(expert, "id", None), state=P.PROPOSED, origin=origin,
                      proposed_by_id=by.id, match_score=score, match_evidence=evidence)
    db.session.add(pairing)
    db.session.flush()
    audit.record("pairing.proposed", actor=by, target=pairing, to_state=P.PROPOSED, comment=comment)
    if origin in ("need", "capability"):
        db.session.add(PairingResponse(pairing=pairing, side=PairingSide.NEED if origin == "need"
                                       else PairingSide.CAPABILITY, decision="interested", message=comment,
                                       user_id=by.id))
    db.session.flush()
    _notify(_parties(pairing), pairing, "proposed", _l("New pairing proposal: %(title)s", title=_title(pairing)),
            _l("A pairing was proposed. Please tell us whether you are interested."), exclude=by)
    return pairing


def _check_capacity(expert) -> None:
    """Refuse a proposal from someone else once the expert's open pairings reach the maximum they set.
    The profile row is locked first, so two concurrent proposals cannot both take the last place."""
    from ..accounts.models import ExpertProfile
    from .assignment import experts_at_capacity
    profile = lock_row(ExpertProfile, expert.id)
    if profile is not None and profile.id in experts_at_capacity([profile.id]):
        raise WorkflowError(_("This expert takes on at most %(n)d open pairings and has reached that number.",
                              n=profile.max_active_pairings), 409)


def suggest_from_engine(need, k: int = 3) -> list[Pairing]:
    """Create ``suggested`` pairings from the engine's top-k capabilities for ``need`` (skipping forbidden or
    existing ones and experts at capacity). Returns the new pairings; nothing when the engine is off."""
    from ..suggestions.queries import capabilities_for_need
    from .assignment import remaining_capacity
    created = []
    suggestions = capabilities_for_need(need, k=k)
    capacity = remaining_capacity(s.listing.expert_id for s in suggestions)
    for s in suggestions:
        cap = s.listing
        if cap.expert_id is not None and capacity.get(("expert", cap.expert_id), 1) <= 0:
            continue  # the expert's active pairings are at their maximum
        try:
            check_pairable(need, cap, cap.expert)
        except WorkflowError:
            continue
        pairing = Pairing(need=need, need_id=need.id, capability=cap, capability_id=cap.id, expert=cap.expert,
                          expert_id=cap.expert_id, state=P.SUGGESTED, origin="engine",
                          match_score=float(s.score), match_evidence=match_to_json(s.match))
        db.session.add(pairing)
        db.session.flush()
        audit.record("pairing.suggested", target=pairing, to_state=P.SUGGESTED)
        _notify(_parties(pairing), pairing, "suggested",
                _l("Suggested pairing: %(title)s", title=_title(pairing)),
                _l("The matching engine suggests this pairing. Please tell us whether you are interested."))
        created.append(pairing)
        if cap.expert_id is not None:
            capacity[("expert", cap.expert_id)] = capacity.get(("expert", cap.expert_id), 1) - 1
    return created


# -- an expert acts on a suggested need ---------------------------------------------------------------

#: longest note an expert may give with "not for me"
MAX_DISMISS_NOTE = 500


def express_interest(need, user, capability=None, message: str | None = None) -> Pairing:
    """The expert says "interested" in a need suggested for them: a pairing proposed from their side (with
    ``capability``, the one of theirs the need was suggested for; without, the expert in person), so their side
    counts as interested and the firm answers next. The firm's side and the coordinators of the need's hub city
    are told (the coordinators see it in their workspace)."""
    if capability is None and getattr(user, "expert_profile", None) is None:
        raise WorkflowError(_("Only an expert, or whoever posted one of the capabilities, can take up a suggested "
                              "need."), 403)
    expert = None if capability is not None else user.expert_profile
    pairing = propose_pairing(need, capability, expert, by=user, origin="capability", comment=message)
    _notify(scope_coordinators(pairing), pairing, "expert_interest",
            _l("An expert is interested: %(title)s", title=_title(pairing)),
            _l("An expert asked to be paired with this need from their suggestions; the enterprise answers next."),
            exclude=user)
    return pairing


def dismiss_need(need, user, reason: str | None = None, note: str | None = None) -> NeedDismissal:
    """The expert marks a suggested need "not for me" (reason and note optional): it is not suggested to them
    again, and it counts against their capabilities for needs like it (``feedback.py``). Audited."""
    if not getattr(user, "is_authenticated", False):
        raise WorkflowError(_("Please sign in first."), 401)
    if need.is_deleted or not need.is_published:
        raise WorkflowError(_("Only published needs are suggested."), 409)
    if reason is not None and reason not in DismissReason.values():
        raise WorkflowError(_("Unknown reason."), 400)
    note = _text(note)
    if note is not None and len(note) > MAX_DISMISS_NOTE:
        raise WorkflowError(_("The note may have at most %(max)d characters.", max=MAX_DISMISS_NOTE), 400)
    if db.session.scalar(select(NeedDismissal.id).where(NeedDismissal.user_id == user.id,
                                                        NeedDismissal.need_id == need.id)) is not None:
        raise WorkflowError(_("You have already marked this need “not for me”."), 409)
    dismissal = NeedDismissal(user_id=user.id, need_id=need.id, reason=reason, note=note)
    db.session.add(dismissal)
    db.session.flush()  # a second click at the same moment fails here on the unique constraint (a lost race)
    # the reason in the actor's words (the row keeps the code, but an undo removes the row)
    said = [str(DismissReason.label_of(reason))] if reason else []
    audit.record("suggestion.dismissed", actor=user, target=need, comment=" — ".join(said + [note or ""]).strip(" —")
                 or None)
    return dismissal


def restore_need(need, user) -> None:
    """Undo "not for me": the need may be suggested to the expert again. Audited."""
    dismissal = db.session.scalars(select(NeedDismissal).where(NeedDismissal.user_id == user.id,
                                                               NeedDismissal.need_id == need.id)).first()
    if dismissal is None:
        raise WorkflowError(_("This need is not among those you marked “not for me”."), 404)
    db.session.delete(dismissal)
    audit.record("suggestion.restored", actor=user, target=need)
    db.session.flush()


def dismissed_need_ids(user) -> set[int]:
    return set(db.session.scalars(select(NeedDismissal.need_id).where(NeedDismissal.user_id == user.id)))


def match_to_json(match) -> dict:
    """A JSON-safe snapshot of an engine Match (score, components, confidence and band, language, evidence):
    what the pairing pages show as "why this pairing"."""
    def clean(v):
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (str, int, bool)) or v is None:
            return v
        try:
            return float(v)
        except (TypeError, ValueError):
            return str(v)
    ev = getattr(match, "evidence", None)
    return {"score": clean(getattr(match, "score", None)),
            "confidence": clean(getattr(match, "confidence", None)),
            "band": clean(getattr(match, "band", None)),
            "lang": clean(getattr(match, "lang", None)),
            "raw": clean(getattr(match, "raw", {}) or {}),
            "components": clean(getattr(match, "components", {}) or {}),
            "evidence": clean(ev.to_dict() if hasattr(ev, "to_dict") else ev),
            "feedback_notes": [str(n) for n in getattr(match, "feedback_notes", None) or []]}


# -- responses -----------------------------------------------------------------------------------

def respond(pairing: Pairing, user, side: str, decision: str, reason: str | None = None,
            message: str | None = None) -> PairingResponse:
    """One side says it is interested (with a message) or declines (with a structured reason)."""
    if side not in PairingSide.values():
        raise WorkflowError(_("Unknown side."), 400)
    if decision not in ("interested", "declined"):
        raise WorkflowError(_("Unknown decision."), 400)
    if not pairing.is_on_side(user, side):
        raise WorkflowError(_("You are not on this side of the pairing."), 403)
    message = _text(message)
    # lock first: two "interested" answers at the same moment must not both miss each other (the second
    # waits for the first, then sees its response and moves the pairing to pending_review)
    pairing = _lock(pairing)
    _check_listings_live(pairing)
    if pairing.state not in (P.SUGGESTED, P.PROPOSED):
        raise WorkflowError(_("This pairing is “%(state)s” and no longer takes responses.",
                              state=P.label_of(pairing.state)), 409)
    if pairing.response_of(side) is not None:
        raise WorkflowError(_("This side has already responded."), 409)
    if decision == "declined":
        if reason not in DeclineReason.values():
            raise WorkflowError(_("Please choose a reason for declining."), 400)
        if reason == DeclineReason.OTHER and not message:
            raise WorkflowError(_("Please explain the reason “Other”."), 400)
    else:
        reason = None
    response = PairingResponse(pairing=pairing, side=side, decision=decision, reason=reason, message=message,
                               user_id=user.id)
    db.session.add(response)
    pairing.updated_at = utcnow()  # every answer bumps the version: a concurrent change fails the flush
    # side and decision in the action, the reason in the response row: the history shows them translated;
    # the comment keeps only what the person wrote
    audit.record(f"pairing.response.{side}.{decision}", actor=user, target=pairing, comment=message)
    if decision == "declined":
        MACHINE.move(pairing, P.DECLINED, user)
        _notify(_parties(pairing), pairing, "declined", _l("Pairing declined: %(title)s", title=_title(pairing)),
                _l("Reason: %(reason)s", reason=DeclineReason.label_of(reason)), exclude=user)
    else:
        other = PairingSide.CAPABILITY if side == PairingSide.NEED else PairingSide.NEED
        theirs = pairing.response_of(other)
        if theirs is not None and theirs.decision == "interested":
            MACHINE.move(pairing, P.PENDING_REVIEW, user)  # the message is on the answer just recorded
            _notify(_parties(pairing) + scope_coordinators(pairing), pairing, "pending_review",
                    _l("Both sides are interested: %(title)s", title=_title(pairing)),
                    _l("The pairing awaits a coordinator's approval."), exclude=user)
        else:
            _notify(_parties(pairing), pairing, "interest", _l("Interest in pairing: %(title)s",
                                                               title=_title(pairing)), message or "", exclude=user)
    db.session.flush()
    return response


def _check_listings_live(pairing: Pairing) -> None:
    for listing in (pairing.need, pairing.capability):
        if listing is not None and (listing.is_deleted or listing.status == ListingStatus.CLOSED):
            raise WorkflowError(_("“%(title)s” has been withdrawn; this pairing cannot go on.",
                                  title=listing.title), 409)


def end_open_pairings(listing, actor) -> int:
    """A need or capability was closed or deleted: its pairings that are not docked yet end as declined
    (freeing the expert's capacity) and the other side is told. Docked pairings go on: a need closed because
    it was solved keeps its meetings and contracts. Returns how many ended."""
    column = Pairing.need_id if listing.kind_name == "need" else Pairing.capability_id
    ended = 0
    for pairing in db.session.scalars(select(Pairing).where(column == listing.id,
                                                            Pairing.state.in_(UNDOCKED_OPEN))).unique().all():
        pairing = _lock(pairing)
        if pairing.state not in UNDOCKED_OPEN:
            continue
        MACHINE.move(pairing, P.DECLINED, actor)
        _notify(_parties(pairing), pairing, "declined", _l("Pairing ended: %(title)s", title=_title(pairing)),
                _l("“%(listing)s” has been withdrawn.", listing=listing.title), exclude=actor)
        ended += 1
    db.session.flush()
    return ended


listing_withdrawn.connect(end_open_pairings, weak=False)


def withdraw(pairing: Pairing, user, reason: str | None = None) -> None:
    """The proposer (or a coordinator in scope) takes back a pairing not docked yet; the others are told."""
    pairing = _lock(pairing)
    if pairing.state not in UNDOCKED_OPEN:
        raise WorkflowError(_("This pairing is “%(state)s” and can no longer be withdrawn.",
                              state=P.label_of(pairing.state)), 409)
    if not pairing.can_withdraw(user):
        raise WorkflowError(_("Only whoever proposed this pairing or a coordinator may withdraw it."), 403)
    reason = _text(reason)
    MACHINE.move(pairing, P.DECLINED, user, reason, action="pairing.withdrawn")
    _notify(_parties(pairing) + scope_coordinators(pairing), pairing, "withdrawn",
            _l("Pairing withdrawn: %(title)s", title=_title(pairing)), reason or "", exclude=user)
    db.session.flush()


# -- coordinator judgment ------------------------------------------------------------------------

def judge(pairing: Pairing, coordinator, approve: bool, comment: str | None = None) -> None:
    """Approve (optional comment) or reject (comment required) a pairing both sides want."""
    comment = _text(comment)
    if not pairing.can_judge(coordinator):
        raise WorkflowError(_("Only a coordinator of the need's hub city who is on neither side may judge "
                              "this pairing."), 403)
    to = P.APPROVED if approve else P.REJECTED
    MACHINE.check(pairing, to)
    _check_listings_live(pairing)
    if not approve and not comment:
        raise WorkflowError(_("A reason is required to reject a pairing."), 400)
    pairing.judged_by_id = coordinator.id
    pairing.judged_at = utcnow()
    pairing.judgment_comment = comment
    MACHINE.move(pairing, to, coordinator, comment)
    db.session.flush()  # the version check happens here: a concurrent judgment raises StaleDataError
    if approve:
        _notify(_parties(pairing), pairing, "approved", _l("Pairing approved: %(title)s", title=_title(pairing)),
                comment or "", exclude=coordinator)
    else:
        _notify(_parties(pairing), pairing, "rejected", _l("Pairing rejected: %(title)s", title=_title(pairing)),
                comment or "", exclude=coordinator)


# -- docking -------------------------------------------------------------------------------------

def schedule_meeting(pairing: Pairing, actor, when: datetime, place: str) -> None:
    """Approved (or already scheduled: reschedule) → meeting_scheduled, with time (UTC) and place.

    ``actor`` must be a coordinator in scope or a party to the pairing (docking fairs pass the organizer).
    """
    place = _text(place) or ""
    if not pairing.can_schedule(actor):
        raise WorkflowError(_("You may not schedule a meeting for this pairing."), 403)
    MACHINE.check(pairing, P.MEETING_SCHEDULED)
    if not isinstance(when, datetime):
        raise WorkflowError(_("A meeting needs a date and time."), 400)
    if not place:
        raise WorkflowError(_("A meeting needs a place or a video link."), 400)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    pairing.meeting_at = when.astimezone(timezone.utc)
    pairing.meeting_place = place[:300]
    MACHINE.move(pairing, P.MEETING_SCHEDULED, actor, comment=f"{pairing.meeting_at.astimezone(PROGRAMME_TZ):%Y-%m-%d %H:%M}, {place}")  # Beijing time, as on the page
    db.session.flush()
    _notify(_parties(pairing), pairing, "meeting_scheduled",
            _l("Meeting scheduled: %(title)s", title=_title(pairing)),
            _l("%(when)s (Beijing time) at %(place)s",
               when=f"{pairing.meeting_at.astimezone(PROGRAMME_TZ):%Y-%m-%d %H:%M}", place=place),
            exclude=actor)


def cancel_meeting(pairing: Pairing, actor, reason: str) -> None:
    """meeting_scheduled → approved, with the meeting's time and place cleared: the meeting itself is gone
    (a docking fair's schedule was cleared or re-run without it). The only way back to approved, kept out
    of ``TRANSITIONS`` so that no other operation (e.g. judging again) can take it; audited like a transition.
    """
    if not pairing.can_schedule(actor):
        raise WorkflowError(_("You may not schedule a meeting for this pairing."), 403)
    if pairing.state != P.MEETING_SCHEDULED:
        raise MACHINE.refuse(pairing, P.APPROVED)
    old = f"{pairing.meeting_at:%Y-%m-%d %H:%M} UTC, {pairing.meeting_place}" if pairing.meeting_at else ""
    pairing.meeting_at = None
    pairing.meeting_place = None
    MACHINE.move(pairing, P.APPROVED, actor, f"{old} — {reason}" if old else reason,
                 action="pairing.meeting_cancelled", checked=False)  # left out of the table on purpose
    db.session.flush()
    _notify(_parties(pairing), pairing, "meeting_cancelled",
            _l("Meeting cancelled: %(title)s", title=_title(pairing)), reason, exclude=actor)


# -- outcome -------------------------------------------------------------------------------------

def record_outcome(pairing: Pairing, user, outcome: str, contract_type: str | None = None,
                   amount=None, note: str | None = None) -> None:
    """in progress; contract signed (type and amount > 0 required); failed (reason required)."""
    note = _text(note)
    if outcome not in [s.value for s in OUTCOME_STATES]:
        raise WorkflowError(_("Unknown outcome."), 400)
    if not pairing.can_record_outcome(user):
        raise WorkflowError(_("You may not record the outcome of this pairing."), 403)
    MACHINE.check(pairing, outcome)
    if outcome == P.CONTRACT_SIGNED:
        if contract_type not in ContractType.values():
            raise WorkflowError(_("Please choose the contract type."), 400)
        if amount is None or (isinstance(amount, str) and not amount.strip()):
            raise WorkflowError(_("Please enter the contract amount."), 400)
        try:
            amount = parse_amount(amount if isinstance(amount, (str, Decimal, int)) else str(amount))
            amount = amount.quantize(Decimal("0.01"))
        except (AmountError, InvalidOperation):
            raise WorkflowError(_("The contract amount is not a number: write it as 1200000, 1,200,000 or "
                                  "120万."), 400) from None
        if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e12"):
            raise WorkflowError(_("The contract amount must be positive."), 400)
        pairing.contract_type = contract_type
        pairing.contract_amount = amount
    if outcome == P.FAILED and not note:
        raise WorkflowError(_("Please give the reason the pairing failed."), 400)
    pairing.outcome_note = note or pairing.outcome_note
    pairing.outcome_at = utcnow()
    MACHINE.move(pairing, outcome, user, note)
    db.session.flush()
    _notify(_parties(pairing), pairing, outcome, _l("Pairing outcome: %(title)s", title=_title(pairing)),
            P.label_of(outcome), exclude=user)
