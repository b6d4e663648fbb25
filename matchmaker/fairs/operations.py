"""Docking fair service layer: every change checks permission and state, writes an audit entry, flushes,
and never commits (the request or CLI command owns the transaction).

Fair: draft → open → closed → held. Registration and meeting requests while open and before the
registration deadline; accept/decline until the fair is held; the scheduler runs while the fair is open. Its
schedule is neither re-run nor cleared once the fair has started, a fair is marked held only once it has ended,
and the meetings of a held fair are no longer locked or unlocked. Unanswered requests expire at the registration
deadline (``expire_unanswered``).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..core import audit
from ..core.forms import clean_text
from ..core.scope import coordinator_scope_of
from ..core.statemachine import StateMachine
from ..core.time import utcnow
from ..core.workflow import WorkflowError
from ..extensions import db
from ..listings.models import Capability, Need
from ..notifications.operations import notify
from . import scheduler as sched
from .models import (Fair, FairMode, FairRegistration, FairStatus, Meeting, MeetingParticipant, MeetingRequest,
                     RequestStatus)

FAIR_FIELDS = ("title", "description", "starts_at", "ends_at", "mode", "place", "video_url", "hub_city",
               "organizer_id", "slot_minutes", "tables", "registration_deadline")

MAX_SLOTS = 1000  # e.g. three days round the clock in 5-minute meetings would be 864

#: the exact solver's time limit: it runs inside the POST that holds SQLite's write lock, and other writers
#: wait for it only up to their busy timeout (5 s, ``extensions``)
SOLVER_SECONDS = 3.0

TRANSITIONS = {
    FairStatus.DRAFT: {FairStatus.OPEN},
    FairStatus.OPEN: {FairStatus.CLOSED},
    FairStatus.CLOSED: {FairStatus.OPEN, FairStatus.HELD},
    FairStatus.HELD: set(),
}
MACHINE = StateMachine(TRANSITIONS, labels=FairStatus, noun="fair",
                       refusal=_l("A fair cannot go from “%(frm)s” to “%(to)s”."))


def _link(fair) -> str | None:
    try:
        return url_for("fairs.detail", fair_id=fair.id)
    except RuntimeError:  # no request context (CLI)
        return f"/fairs/{fair.id}"


# --- fairs -------------------------------------------------------------------------------------------------

def _validate_fair(data: dict) -> None:
    starts, ends, deadline = data.get("starts_at"), data.get("ends_at"), data.get("registration_deadline")
    for value in (starts, ends, deadline):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise WorkflowError(_("Start, end and registration deadline are required (UTC times)."), 400)
    if ends <= starts:
        raise WorkflowError(_("The fair must end after it starts."), 400)
    if deadline > starts:
        raise WorkflowError(_("The registration deadline must not be after the start of the fair."), 400)
    minutes = data.get("slot_minutes") or 0
    if not 5 <= minutes <= 240:
        raise WorkflowError(_("A meeting slot lasts between 5 and 240 minutes."), 400)
    if (ends - starts).total_seconds() < minutes * 60:
        raise WorkflowError(_("The fair is shorter than one meeting slot."), 400)
    if (ends - starts).total_seconds() // (minutes * 60) > MAX_SLOTS:
        # every slot is a column of the schedule grid and of the scheduler's model
        raise WorkflowError(_("A fair has at most %(n)d meeting slots: shorten the fair or lengthen the meetings.",
                              n=MAX_SLOTS), 400)
    if not 1 <= (data.get("tables") or 0) <= 500:
        raise WorkflowError(_("A fair has between 1 and 500 tables."), 400)
    if data.get("mode") == FairMode.ONSITE and not (data.get("place") or "").strip():
        raise WorkflowError(_("An on-site fair needs a place."), 400)
    if data.get("mode") == FairMode.VIDEO and not (data.get("video_url") or "").strip():
        raise WorkflowError(_("A video fair needs a video link."), 400)
    video_url = (data.get("video_url") or "").strip()
    if video_url and not video_url.lower().startswith(("https://", "http://")):
        raise WorkflowError(_("The video link must be an http(s) address."), 400)
    if data.get("mode") not in FairMode.values():
        raise WorkflowError(_("Unknown fair mode."), 400)


def _check_scope(actor, hub_city) -> None:
    """A fair's hub city must be one the organizer's coordinator scope covers; only the message is the fairs'."""
    if not coordinator_scope_of(actor).covers(hub_city):
        raise WorkflowError(_("You may organize fairs only in your hub city."), 403)


def create_fair(actor, data: dict) -> Fair:
    if not getattr(actor, "is_coordinator", False):
        raise WorkflowError(_("Only coordinators can organize docking fairs."), 403)
    _check_scope(actor, data.get("hub_city"))
    _validate_fair(data)
    fair = Fair(status=FairStatus.DRAFT, coordinator_id=actor.id,
                **{k: data.get(k) for k in FAIR_FIELDS if k in data})
    db.session.add(fair)
    db.session.flush()
    audit.record("fair.create", actor=actor, target=fair, to_state=FairStatus.DRAFT)
    return fair


def update_fair(fair: Fair, actor, data: dict) -> None:
    if not fair.can_manage(actor):
        raise WorkflowError(_("You may not manage this fair."), 403)
    if fair.status == FairStatus.HELD:
        raise WorkflowError(_("A fair that has been held cannot be edited."), 409)
    merged = {k: getattr(fair, k) for k in FAIR_FIELDS}
    merged.update({k: v for k, v in data.items() if k in FAIR_FIELDS})
    _check_scope(actor, merged["hub_city"])  # the same rule as create_fair: no moving (or blanking) it away
    _validate_fair(merged)
    if _schedule_exists(fair) and any(merged[k] != getattr(fair, k)
                                      for k in ("starts_at", "slot_minutes", "tables", "ends_at")):
        raise WorkflowError(_("Times, slots and tables cannot change once meetings are scheduled; "
                              "clear the schedule first."), 409)
    for k in FAIR_FIELDS:
        setattr(fair, k, merged[k])
    audit.record("fair.edit", actor=actor, target=fair)
    db.session.flush()


def _transition(fair: Fair, actor, to: str, now: datetime | None = None) -> None:
    if not fair.can_manage(actor):
        raise WorkflowError(_("You may not manage this fair."), 403)
    MACHINE.check(fair, to)
    if to == FairStatus.HELD and (now or utcnow()) < fair.ends_at:
        raise WorkflowError(_("A fair can be marked as held only once it has ended."), 409)
    MACHINE.move(fair, to, actor)
    db.session.flush()


def open_fair(fair: Fair, actor) -> None:
    _transition(fair, actor, FairStatus.OPEN)


def close_fair(fair: Fair, actor) -> None:
    _transition(fair, actor, FairStatus.CLOSED)


def mark_held(fair: Fair, actor, now: datetime | None = None) -> None:
    _transition(fair, actor, FairStatus.HELD, now=now)


# --- registration --------------------------------------------------------------------------------------------

def register_listing(fair: Fair, listing, actor, now: datetime | None = None) -> FairRegistration:
    now = now or utcnow()
    if not isinstance(listing, (Need, Capability)):
        raise WorkflowError(_("Only needs and capabilities can be registered."), 400)
    if not listing.is_owned_by(actor):
        raise WorkflowError(_("You can register only your own listings."), 403)
    if not listing.is_published:
        raise WorkflowError(_("Only published listings can take part in a fair."), 409)
    if not fair.registration_open(now):
        raise WorkflowError(_("Registration for this fair is not open."), 409)
    column = FairRegistration.need_id if isinstance(listing, Need) else FairRegistration.capability_id
    if db.session.scalar(select(FairRegistration.id).where(FairRegistration.fair_id == fair.id,
                                                           column == listing.id)):
        raise WorkflowError(_("This listing is already registered for the fair."), 409)
    reg = FairRegistration(fair_id=fair.id, registered_by_id=actor.id,
                           need_id=listing.id if isinstance(listing, Need) else None,
                           capability_id=listing.id if isinstance(listing, Capability) else None)
    db.session.add(reg)
    db.session.flush()
    audit.record("fair.register", actor=actor, target=reg, comment=f"{listing.kind_name}:{listing.id}")
    return reg


def is_registered(fair: Fair, listing) -> bool:
    column = FairRegistration.need_id if isinstance(listing, Need) else FairRegistration.capability_id
    return db.session.scalar(select(FairRegistration.id).where(FairRegistration.fair_id == fair.id,
                                                               column == listing.id)) is not None


# --- people -----------------------------------------------------------------------------------------------------

def need_person(need: Need):
    """The firm's contact in person: the user who posted the need."""
    return need.created_by


def capability_person(cap: Capability):
    """The expert in person: the expert behind the capability, else its poster."""
    if cap.expert is not None:
        return cap.expert.user
    return cap.created_by


def people_of(request: MeetingRequest) -> dict:
    return {"need": need_person(request.need), "capability": capability_person(request.capability)}


def _owner_users(listing):
    """Who hears about a listing: its poster (and the expert behind a capability)."""
    users = [listing.created_by]
    if isinstance(listing, Capability) and listing.expert is not None:
        users.append(listing.expert.user)
    return users


def _side_owned(listing, user) -> bool:
    if listing.is_owned_by(user):
        return True
    return isinstance(listing, Capability) and listing.expert is not None and listing.expert.user_id == user.id


# --- meeting requests -----------------------------------------------------------------------------------------

def request_meeting(fair: Fair, need: Need, capability: Capability, actor, message: str = "",
                    now: datetime | None = None) -> MeetingRequest:
    """``actor`` owns one side; both listings are registered; the sides belong to different organizations."""
    now = now or utcnow()
    owns_need, owns_cap = _side_owned(need, actor), _side_owned(capability, actor)
    if not (owns_need or owns_cap):
        raise WorkflowError(_("You can request meetings only for your own listings."), 403)
    if owns_need and owns_cap:
        raise WorkflowError(_("Both listings are yours: there is nobody to meet."), 409)
    if not fair.registration_open(now):
        raise WorkflowError(_("Meeting requests for this fair are closed."), 409)
    if not (is_registered(fair, need) and is_registered(fair, capability)):
        raise WorkflowError(_("Both listings must be registered for the fair."), 409)
    if not (need.is_published and capability.is_published):
        raise WorkflowError(_("Both listings must be published."), 409)
    if need.organization_id is not None and need.organization_id == capability.organization_id:
        raise WorkflowError(_("Listings of the same organization cannot meet each other at a fair."), 409)
    n_person, c_person = need_person(need), capability_person(capability)
    if n_person is None or c_person is None or n_person.id == c_person.id:
        raise WorkflowError(_("Both sides must be different people."), 409)
    if need.organization_id is not None and need.organization_id in c_person.organization_ids:
        raise WorkflowError(_("Listings of the same organization cannot meet each other at a fair."), 409)
    if db.session.scalar(select(MeetingRequest.id).where(MeetingRequest.fair_id == fair.id,
                                                         MeetingRequest.need_id == need.id,
                                                         MeetingRequest.capability_id == capability.id)):
        raise WorkflowError(_("A meeting between these two listings has already been requested."), 409)
    from ..pairings.models import Pairing
    pairing_id = db.session.scalar(select(Pairing.id).where(Pairing.need_id == need.id,
                                                            Pairing.capability_id == capability.id))
    req = MeetingRequest(fair_id=fair.id, need_id=need.id, capability_id=capability.id,
                         requested_by_side="need" if owns_need else "capability", requester_id=actor.id,
                         message=(clean_text(message or "") or "")[:2000], status=RequestStatus.REQUESTED,
                         pairing_id=pairing_id)
    db.session.add(req)
    db.session.flush()
    audit.record("fair.meeting_request", actor=actor, target=req, to_state=RequestStatus.REQUESTED)
    other = capability if owns_need else need
    notify(_owner_users(other), "fair.meeting_request",
           _l("Meeting request at %(fair)s", fair=fair.title),
           _l("%(who)s would like to meet you about “%(title)s”.", who=actor.name,
             title=(need if owns_need else capability).title), link=_link(fair))
    return req


def _respond(req: MeetingRequest, actor, to: str) -> None:
    target = req.listing_of(req.target_side)
    if not _side_owned(target, actor):
        raise WorkflowError(_("Only the other side can answer this meeting request."), 403)
    if req.status != RequestStatus.REQUESTED:
        raise WorkflowError(_("This request has already been answered (%(status)s).",
                              status=RequestStatus.label_of(req.status)), 409)
    if req.fair.status not in (FairStatus.OPEN, FairStatus.CLOSED):
        raise WorkflowError(_("This fair no longer takes answers."), 409)
    if utcnow() > req.fair.registration_deadline:
        raise WorkflowError(_("The registration deadline has passed: unanswered requests have expired."), 409)
    frm = req.status
    req.status = to
    req.responded_by_id = actor.id
    req.responded_at = utcnow()
    audit.record(f"fair.meeting_{to}", actor=actor, target=req, from_state=frm, to_state=to)
    db.session.flush()
    notify([req.requester], f"fair.meeting_{to}",
           _l("Your meeting request was accepted") if to == RequestStatus.ACCEPTED
           else _l("Your meeting request was declined"),
           _l("“%(need)s” × “%(cap)s” at %(fair)s", need=req.need.title, cap=req.capability.title,
             fair=req.fair.title), link=_link(req.fair))


def accept_request(req: MeetingRequest, actor) -> None:
    _respond(req, actor, RequestStatus.ACCEPTED)


def decline_request(req: MeetingRequest, actor) -> None:
    _respond(req, actor, RequestStatus.DECLINED)


def expire_unanswered(now: datetime | None = None) -> int:
    """Requests still unanswered after their fair's registration deadline become expired."""
    now = now or utcnow()
    stale = db.session.scalars(
        select(MeetingRequest).join(Fair, Fair.id == MeetingRequest.fair_id)
        .where(MeetingRequest.status == RequestStatus.REQUESTED, Fair.registration_deadline < now)).all()
    for req in stale:
        req.status = RequestStatus.EXPIRED
        audit.record("fair.meeting_expired", target=req, from_state=RequestStatus.REQUESTED,
                     to_state=RequestStatus.EXPIRED, comment="registration deadline passed")
    db.session.flush()
    return len(stale)


# --- scheduling -------------------------------------------------------------------------------------------------

def _schedule_exists(fair: Fair) -> bool:
    return db.session.scalar(select(Meeting.id).where(Meeting.fair_id == fair.id).limit(1)) is not None


def _refuse_if_started(fair: Fair, now: datetime | None) -> None:
    """Meetings that may already have taken place are not moved or removed (nor the pairings behind them)."""
    if (now or utcnow()) >= fair.starts_at:
        raise WorkflowError(_("The fair has started: its schedule can no longer be changed."), 409)


def _busy_elsewhere(fair: Fair, user_ids) -> dict:
    """user id → the slots of ``fair`` that overlap a meeting of theirs at another fair."""
    rows = db.session.execute(
        select(MeetingParticipant.user_id, Meeting.starts_at, Meeting.ends_at)
        .join(Meeting, Meeting.id == MeetingParticipant.meeting_id)
        .where(MeetingParticipant.user_id.in_(list(user_ids)), Meeting.fair_id != fair.id,
               Meeting.starts_at < fair.ends_at, Meeting.ends_at > fair.starts_at)).all()
    busy = defaultdict(set)
    step = timedelta(minutes=fair.slot_minutes)
    for user_id, starts_at, ends_at in rows:
        s = max(0, (starts_at - fair.starts_at) // step)
        while s < fair.n_slots and fair.slot_start(s) < ends_at:
            if fair.slot_end(s) > starts_at:
                busy[user_id].add(s)
            s += 1
    return dict(busy)


def run_scheduler(fair: Fair, actor, time_limit: float = SOLVER_SECONDS,
                  now: datetime | None = None) -> sched.Schedule:
    """Replace the fair's unlocked meetings with a new schedule of every accepted request, in the caller's
    transaction (all or nothing). Approved pairings behind a scheduled meeting move to meeting_scheduled.
    Meetings go only into the fair's daytime slots (``Fair.slot_days``: earlier days first), and nobody is
    booked in a slot that overlaps a meeting of theirs at another fair."""
    if not fair.can_manage(actor):
        raise WorkflowError(_("You may not manage this fair."), 403)
    if fair.status != FairStatus.OPEN:
        raise WorkflowError(_("Only an open fair can be scheduled (this one is “%(status)s”).",
                              status=FairStatus.label_of(fair.status)), 409)
    _refuse_if_started(fair, now)
    days = fair.slot_days()
    if all(day is None for day in days):
        raise WorkflowError(_("The fair has no meeting slot."), 409)

    old = db.session.scalars(select(Meeting).where(Meeting.fair_id == fair.id)).all()
    kept = [m for m in old if m.locked]
    removed = [(m.request, m.starts_at) for m in old if not m.locked]
    for m in old:
        if not m.locked:
            if m.request.status == RequestStatus.SCHEDULED:
                m.request.status = RequestStatus.ACCEPTED
            db.session.delete(m)
    db.session.flush()

    requests = db.session.scalars(select(MeetingRequest).where(
        MeetingRequest.fair_id == fair.id, MeetingRequest.status == RequestStatus.ACCEPTED)
        .order_by(MeetingRequest.id)).all()
    people = {r.id: people_of(r) for r in requests}
    plain = [sched.Request(r.id, frozenset(u.id for u in people[r.id].values() if u is not None))
             for r in requests]
    fixed = [sched.Fixed(m.id, frozenset(p.user_id for p in m.participants), m.slot, m.table_no) for m in kept]
    closed = [s for s, day in enumerate(days) if day is None]
    elsewhere = _busy_elsewhere(fair, {u for r in plain for u in r.people})
    result = sched.schedule(plain, fair.n_slots, fair.tables, fixed=fixed, time_limit=time_limit, closed=closed,
                            unavailable=elsewhere, day_of=[day or 0 for day in days])
    problems = sched.check(plain, result.placed, fair.n_slots, fair.tables, fixed, closed=closed,
                           unavailable=elsewhere)
    if problems:  # pragma: no cover - the scheduler's own guarantee; never write a broken schedule
        raise WorkflowError(_("The scheduler produced an invalid schedule; nothing was saved."), 500)

    by_id = {r.id: r for r in requests}
    for rid, (slot, table) in sorted(result.placed.items(), key=lambda kv: kv[1]):
        req = by_id[rid]
        meeting = Meeting(fair_id=fair.id, request_id=rid, slot=slot, table_no=table,
                          starts_at=fair.slot_start(slot), ends_at=fair.slot_end(slot))
        for side, user in people[rid].items():
            meeting.participants.append(MeetingParticipant(user_id=user.id, fair_id=fair.id, slot=slot, side=side))
        db.session.add(meeting)
        req.status = RequestStatus.SCHEDULED
        req.unscheduled_reason = None
        _link_pairing(req, meeting, fair, actor)
    for rid, reason in result.unscheduled.items():
        by_id[rid].unscheduled_reason = reason
    for req, starts_at in removed:  # placed again → _link_pairing above moved the pairing's meeting already
        if req.id not in result.placed:
            _unlink_pairing(req, starts_at, actor, _("The meeting was left out of the new schedule of %(fair)s.",
                                                     fair=fair.title))
    fair.schedule_report = {str(k): v for k, v in result.unscheduled.items()}
    fair.scheduled_at = utcnow()
    db.session.flush()
    audit.record("fair.schedule", actor=actor, target=fair,
                 comment=f"{result.count} scheduled, {len(result.unscheduled)} unscheduled, "
                         f"{len(kept)} locked kept ({result.method})")
    for rid, (slot, table) in result.placed.items():
        req = by_id[rid]
        notify([u for u in people[rid].values()], "fair.meeting_scheduled",
               _l("Meeting scheduled at %(fair)s", fair=fair.title),
               _l("“%(need)s” × “%(cap)s”: table %(table)s, slot %(slot)s.", need=req.need.title,
                 cap=req.capability.title, table=table, slot=slot + 1), link=_link(fair), email=False)
    return result


def _link_pairing(req: MeetingRequest, meeting: Meeting, fair: Fair, actor) -> None:
    """An approved pairing behind the request moves to meeting_scheduled (or is rescheduled) through the
    pairings service. A refusal there (e.g. the coordinator's scope) does not undo the fair's schedule: it
    checks before it changes anything, and the refusal is written to the audit trail."""
    if req.pairing_id is None:  # the pairing may have been proposed after the request
        from ..pairings.models import Pairing
        req.pairing = db.session.scalars(select(Pairing).where(Pairing.need_id == req.need_id,
                                                               Pairing.capability_id == req.capability_id)).first()
    pairing = req.pairing
    if pairing is None or pairing.state not in ("approved", "meeting_scheduled"):
        return
    try:
        from ..pairings.operations import schedule_meeting
    except ImportError:  # pragma: no cover - pairing lifecycle not installed
        return
    place = fair.location
    if fair.mode == FairMode.ONSITE:
        place = _("%(place)s, table %(n)s", place=fair.place, n=meeting.table_no)
    try:
        schedule_meeting(pairing, actor, meeting.starts_at, place)
    except WorkflowError as exc:
        audit.record("fair.pairing_not_updated", actor=actor, target=req, comment=exc.reason)


def _unlink_pairing(req: MeetingRequest, starts_at: datetime, actor, reason: str) -> None:
    """The meeting of ``req`` (at ``starts_at``) was removed: the pairing whose meeting it set goes back to
    approved, its meeting time and place cleared (``pairings.operations.cancel_meeting``, audited). A pairing
    rescheduled since to another time is left alone. If the pairing cannot be put back (the actor's scope),
    the whole change is refused rather than leaving the pairing pointing at a meeting that no longer exists."""
    pairing = req.pairing
    if pairing is None or pairing.state != "meeting_scheduled" or pairing.meeting_at != starts_at:
        return
    from ..pairings.operations import cancel_meeting
    try:
        cancel_meeting(pairing, actor, reason)
    except WorkflowError as exc:
        raise WorkflowError(_("The meeting of pairing #%(id)s cannot be removed: %(reason)s Nothing was changed.",
                              id=pairing.id, reason=exc.reason), 409) from None


def clear_schedule(fair: Fair, actor, now: datetime | None = None) -> int:
    """Remove every meeting of the fair (locked ones too); their requests are accepted again and the pairings
    whose meeting they set go back to approved. Returns how many. Refused once the fair has started."""
    if not fair.can_manage(actor):
        raise WorkflowError(_("You may not manage this fair."), 403)
    if fair.status == FairStatus.HELD:
        raise WorkflowError(_("The schedule of a fair that has been held is kept as a record."), 409)
    _refuse_if_started(fair, now)
    old = db.session.scalars(select(Meeting).where(Meeting.fair_id == fair.id)).all()
    for m in old:
        if m.request.status == RequestStatus.SCHEDULED:
            m.request.status = RequestStatus.ACCEPTED
        _unlink_pairing(m.request, m.starts_at, actor, _("The schedule of %(fair)s was cleared.", fair=fair.title))
        db.session.delete(m)
    fair.schedule_report = None
    fair.scheduled_at = None
    audit.record("fair.schedule_clear", actor=actor, target=fair, comment=f"{len(old)} meetings removed")
    db.session.flush()
    return len(old)


def set_locked(meeting: Meeting, actor, locked: bool) -> None:
    if not meeting.fair.can_manage(actor):
        raise WorkflowError(_("You may not manage this fair."), 403)
    if meeting.fair.status == FairStatus.HELD:
        raise WorkflowError(_("The meetings of a fair that has been held cannot be locked or unlocked."), 409)
    meeting.locked = bool(locked)
    audit.record("fair.meeting_lock" if locked else "fair.meeting_unlock", actor=actor, target=meeting)
    db.session.flush()


# --- queries ----------------------------------------------------------------------------------------------------

def registrations(fair: Fair):
    return db.session.scalars(select(FairRegistration).where(FairRegistration.fair_id == fair.id)
                              .order_by(FairRegistration.id)).all()


def meetings(fair: Fair):
    return db.session.scalars(select(Meeting).where(Meeting.fair_id == fair.id)
                              .order_by(Meeting.slot, Meeting.table_no)).all()


def meetings_of_user(fair: Fair, user):
    return db.session.scalars(select(Meeting).join(MeetingParticipant)
                              .where(Meeting.fair_id == fair.id, MeetingParticipant.user_id == user.id)
                              .order_by(Meeting.slot)).all()
