"""Regression tests for the pairing and docking-fair review findings: one person on both sides, a fair moved out
of its coordinator's scope, concurrent answers, lost races as 409, out-of-range dates, NUL bytes, meetings
removed under a scheduled pairing and client-supplied engine scores."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from conftest import login
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.fairs import operations as fops
from matchmaker.fairs import scheduler as sched
from matchmaker.fairs.models import Fair, Meeting, MeetingRequest
from matchmaker.listings import operations as lops
from matchmaker.listings.models import Capability
from matchmaker.pairings import assignment as asg
from matchmaker.pairings import operations as ops
from matchmaker.pairings.forms import parse_meeting_time
from matchmaker.pairings.models import Pairing, PairingResponse, PairingState as P
from test_fairs import T0, _fast_password_hashing, fair_data  # noqa: F401  (autouse fixture)
from test_pairings import pw  # noqa: F401  (the fixture: need, capability, scoped coordinator)


def fair_form(fair, **kw):
    form = {"title": fair.title, "starts_at": "2031-05-20T09:00", "ends_at": "2031-05-20T12:00",
            "registration_deadline": "2031-05-18T09:00", "mode": "onsite", "place": fair.place,
            "hub_city": fair.hub_city or "", "organizer_id": "0", "slot_minutes": "30", "tables": "4"}
    form.update(kw)
    return form


def c(app, user):
    return login(app.test_client(), user)


def _approved(pw) -> Pairing:
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    ops.respond(p, pw["expert"], "capability", "interested")
    ops.judge(p, pw["coord"], True, "同意")
    db.session.commit()
    return p


def _personal_capability(make, user, **kw) -> Capability:
    """A capability ``user`` posts in person (no organization)."""
    data = {"title": "低温电解液配方技术", "kind": "achievement", "summary": "宽温域电解液与负极改性。",
            "description": "团队开发的低温电解液使电池在-30℃保持80%容量。", "field": "new_energy", "trl": 6,
            "ip": "ZL202110000000.1", "coop_modes": ["license"], "hub_city": "chengdu", "region": "高新区"}
    data.update(kw)
    return make._advance(lops.create_listing(Capability, user, data, organization=None), user, "published")


# --- 1. one person on both sides ---------------------------------------------------------------------------

def test_a_member_of_the_firm_cannot_pair_the_firms_need_with_their_own_capability(app, make, world):
    """A member of the firm posts the firm's need and, in person, a capability: is proposing need × capability
    refused (operations, page, and the global assignment), so nobody can answer for both sides?"""
    person = make.user(Role.EXPERT, org=world["firm"])
    need = make.need(person)
    cap = _personal_capability(make, person)
    assert need.organization_id == world["firm"].id and cap.organization_id is None
    with pytest.raises(WorkflowError, match="不同的人") as exc:
        ops.propose_pairing(need, cap, by=person)
    assert exc.value.status == 409
    db.session.rollback()
    resp = c(app, person).post("/pairings/propose", data={"need_id": need.id, "capability_id": cap.id})
    assert resp.status_code == 303
    assert db.session.scalar(select(func.count(Pairing.id))) == 0
    # a coordinator cannot propose it either, and the assignment marks the candidate instead of proposing it
    with pytest.raises(WorkflowError, match="不同的人"):
        ops.propose_pairing(need, cap, by=world["coordinator"])
    db.session.rollback()
    candidates, _caps = asg.build_candidates([(need, cap, 0.9)])
    assert candidates[0].excluded == "same_person" and "同一人" in str(asg.REASONS["same_person"])


def test_a_colleague_of_the_firm_on_the_capability_side_is_refused_too(make, world):
    """The need is the firm's (posted by someone else); the capability is posted in person by another member
    of the firm: is the pairing refused, while the firm × a real outside expert still pairs?"""
    colleague = make.user(Role.EXPERT, org=world["firm"])
    need = make.need(world["enterprise"])
    cap = _personal_capability(make, colleague)
    with pytest.raises(WorkflowError, match="不同的人"):
        ops.check_pairable(need, cap, cap.expert)
    outside = make.capability(world["expert"])
    ops.check_pairable(need, outside, outside.expert)  # no error


# --- 2. fair scope on edit ---------------------------------------------------------------------------------

@pytest.mark.parametrize("hub_city", ["chengdu", ""])
def test_a_scoped_coordinator_cannot_move_or_unscope_their_fair(app, make, hub_city):
    """Can a coordinator scoped to Chongqing edit their fair to another hub city, or blank it? Both are
    refused (403) like creating it there would be, and the fair keeps its city."""
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    fair = fops.create_fair(coord, fair_data())
    db.session.commit()
    resp = c(app, coord).post(f"/fairs/{fair.id}/edit", data=fair_form(fair, hub_city=hub_city))
    assert resp.status_code == 403
    db.session.expire_all()
    assert db.session.get(Fair, fair.id).hub_city == "chongqing"
    # an edit that stays in scope is still fine
    resp = c(app, coord).post(f"/fairs/{fair.id}/edit", data=fair_form(fair, description="请携带样品。"))
    assert resp.status_code == 303


# --- 3. concurrent "interested" answers -----------------------------------------------------------------

def test_an_answer_sees_the_other_sides_answer_committed_meanwhile(pw):
    """The expert's request loaded the pairing (no answers yet); meanwhile the firm's answer is committed by
    another transaction. Does the expert's "interested" still see it and move the pairing to pending_review
    (it locks and re-reads the pairing), instead of leaving it stuck with two answers in "proposed"?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()
    assert p.responses == [] and p.version == 1
    # the other request's answer, written behind this session's back (its loaded state is now stale)
    db.session.execute(insert(PairingResponse.__table__).values(
        pairing_id=p.id, side="need", decision="interested", user_id=pw["enterprise"].id))
    ops.respond(p, pw["expert"], "capability", "interested")
    db.session.commit()
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.state == P.PENDING_REVIEW
    assert sorted(r.side for r in p.responses) == ["capability", "need"]


def test_every_answer_bumps_the_pairing_version(pw):
    """Does an "interested" answer that does not change the state still touch the pairing (new version), so a
    concurrent writer of the same pairing fails its version check instead of slipping past?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()
    before = p.version
    ops.respond(p, pw["enterprise"], "need", "interested")
    db.session.commit()
    assert p.state == P.PROPOSED and p.version == before + 1


# --- 4. lost races are 409, not 500 ----------------------------------------------------------------------

def test_an_outcome_recorded_on_a_changed_pairing_is_409(app, pw, monkeypatch):
    """The expert records an outcome while another transaction has just changed the pairing (its version moved
    between loading and the operation's flush): is the answer 409 with nothing saved, not a 500?"""
    p = _approved(pw)
    real = ops.record_outcome

    def concurrent_change_then(pairing, *args, **kwargs):
        table = Pairing.__table__
        db.session.execute(update(table).where(table.c.id == pairing.id).values(version=table.c.version + 1))
        return real(pairing, *args, **kwargs)

    monkeypatch.setattr(ops, "record_outcome", concurrent_change_then)
    resp = c(app, pw["expert"]).post(f"/pairings/{p.id}/outcome", data={"outcome": "failed", "note": "不合适"})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).state == P.APPROVED


def test_a_duplicate_proposal_made_at_the_same_moment_is_409(app, pw, monkeypatch):
    """Two proposals of the same need × capability pass the "already exists" check at once; the second insert
    hits the unique index during the operation's flush. Is that a 409 (not a 500), with one pairing left?"""
    db.session.execute(insert(Pairing.__table__).values(
        need_id=pw["need"].id, capability_id=pw["cap"].id, expert_id=pw["cap"].expert_id, state="proposed",
        origin="coordinator"))
    db.session.commit()
    monkeypatch.setattr(ops, "_existing", lambda *args: None)  # the check ran before the other one committed
    resp = c(app, pw["enterprise"]).post("/pairings/propose",
                                         data={"need_id": pw["need"].id, "capability_id": pw["cap"].id})
    assert resp.status_code == 409
    assert db.session.scalar(select(func.count(Pairing.id))) == 1


@pytest.mark.parametrize("error", [StaleDataError("stale"), IntegrityError("INSERT", {}, Exception("unique"))])
def test_a_lost_race_while_answering_is_409(app, pw, monkeypatch, error):
    """If the respond operation's own flush loses a race, is the answer 409 (not 500) with nothing saved?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()

    def lose(*args, **kwargs):
        db.session.add(PairingResponse(pairing_id=p.id, side="need", decision="interested",
                                       user_id=pw["enterprise"].id))
        raise error

    monkeypatch.setattr(ops, "respond", lose)
    resp = c(app, pw["enterprise"]).post(f"/pairings/{p.id}/respond",
                                         data={"side": "need", "decision": "interested"})
    assert resp.status_code == 409
    assert db.session.scalar(select(func.count(PairingResponse.id))) == 0


@pytest.mark.parametrize("name", ["register_listing", "request_meeting", "run_scheduler", "clear_schedule"])
@pytest.mark.parametrize("error", [StaleDataError("stale"), IntegrityError("INSERT", {}, Exception("unique"))])
def test_a_lost_race_in_the_fair_operations_is_409(app, make, world, monkeypatch, name, error):
    """Registering, requesting a meeting, running or clearing the scheduler: when the operation's flush loses a
    race, is the answer 409 rather than 500?"""
    fair = fops.create_fair(world["coordinator"], fair_data())
    fops.open_fair(fair, world["coordinator"])
    need, cap = make.need(world["enterprise"]), make.capability(world["expert"])
    fops.register_listing(fair, cap, world["expert"])
    db.session.commit()

    def lose(*args, **kwargs):
        raise error

    monkeypatch.setattr(fops, name, lose)
    user, url, data = {
        "register_listing": (world["enterprise"], f"/fairs/{fair.id}/register", {"listing": f"need:{need.id}"}),
        "request_meeting": (world["enterprise"], f"/fairs/{fair.id}/requests",
                            {"need_id": need.id, "capability_id": cap.id}),
        "run_scheduler": (world["coordinator"], f"/fairs/{fair.id}/schedule", {}),
        "clear_schedule": (world["coordinator"], f"/fairs/{fair.id}/schedule/clear", {}),
    }[name]
    assert c(app, user).post(url, data=data).status_code == 409


# --- 5. dates out of range -------------------------------------------------------------------------------

@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59", "1999-12-31T23:59", "2101-01-01T00:00"])
def test_a_fair_date_out_of_range_is_a_form_error(app, world, when):
    """Does a fair with a start or deadline in year 1, 9999 or just outside 2000–2100 get a 400 with the form
    error (no OverflowError → 500), and no fair?"""
    form = {"title": "成渝对接会", "starts_at": when, "ends_at": "2031-05-20T12:00", "registration_deadline": when,
            "mode": "onsite", "place": "重庆", "hub_city": "chongqing", "organizer_id": "0", "slot_minutes": "20",
            "tables": "5"}
    resp = c(app, world["coordinator"]).post("/fairs/new", data=form)
    assert resp.status_code == 400
    assert "2000" in resp.text and "2100" in resp.text
    assert db.session.scalar(select(func.count(Fair.id))) == 0


def test_a_fair_with_more_slots_than_a_schedule_can_hold_is_refused(app, world):
    """Is a year-long fair of 5-minute meetings (105,000 slots for the grid and the scheduler) refused with the
    reason on the form and in the service, while 1,000 slots still pass?"""
    form = {"title": "全年不间断对接会", "starts_at": "2031-01-01T00:00", "ends_at": "2031-12-31T23:55",
            "registration_deadline": "2030-12-30T09:00", "mode": "onsite", "place": "重庆", "hub_city": "chongqing",
            "organizer_id": "0", "slot_minutes": "5", "tables": "500"}
    resp = c(app, world["coordinator"]).post("/fairs/new", data=form)
    assert resp.status_code == 400 and "1000" in resp.text
    assert db.session.scalar(select(func.count(Fair.id))) == 0
    with pytest.raises(WorkflowError) as exc:
        fops.create_fair(world["coordinator"], fair_data(ends_at=T0 + timedelta(minutes=5 * 1001), slot_minutes=5))
    assert exc.value.status == 400
    db.session.rollback()
    fair = fops.create_fair(world["coordinator"], fair_data(ends_at=T0 + timedelta(minutes=5 * 1000), slot_minutes=5))
    assert fair.n_slots == 1000
    with pytest.raises(WorkflowError):
        fops.update_fair(fair, world["coordinator"], fair_data(ends_at=T0 + timedelta(days=30), slot_minutes=5))


@pytest.mark.parametrize("when,offset", [("0001-01-01T00:00", "840"), ("9999-12-31T23:59", "-840"),
                                         ("0001-01-01T00:00+14:00", None), ("2101-01-01T00:00", "480")])
def test_a_meeting_time_out_of_range_is_refused_not_a_crash(app, pw, when, offset):
    """Is a pairing meeting in year 1 or 9999 at an extreme offset refused as bad input (400 from the parser,
    the page redirects with the message) instead of an OverflowError, and the pairing unchanged?"""
    with pytest.raises(WorkflowError) as exc:
        parse_meeting_time(when, offset)
    assert exc.value.status == 400 and "2000" in exc.value.reason
    p = _approved(pw)
    data = {"when": when, "place": "重庆会展中心"}
    if offset is not None:
        data["tz_offset"] = offset
    resp = c(app, pw["enterprise"]).post(f"/pairings/{p.id}/schedule", data=data)
    assert resp.status_code == 303
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.state == P.APPROVED and p.meeting_at is None


# --- 6. NUL characters in free text ------------------------------------------------------------------------

def test_nul_characters_are_removed_from_every_pairing_text(app, pw):
    """PostgreSQL refuses NUL in text. Are they removed from the proposal message, the answer's message, the
    judgment comment, the meeting place and the outcome note (all through the pages)?"""
    resp = c(app, pw["enterprise"]).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "message": "你好\x00，想合作"})
    assert resp.status_code == 303
    p = db.session.scalars(select(Pairing)).one()
    assert p.responses[0].message == "你好，想合作"
    assert c(app, pw["expert"]).post(f"/pairings/{p.id}/respond", data={
        "side": "capability", "decision": "interested", "message": "可以\x00谈"}).status_code == 303
    db.session.expire_all()
    assert c(app, pw["coord"]).post(f"/pairings/{p.id}/judge", data={
        "decision": "approve", "version": str(db.session.get(Pairing, p.id).version),
        "comment": "同意\x00"}).status_code == 303
    assert c(app, pw["enterprise"]).post(f"/pairings/{p.id}/schedule", data={
        "when": "2031-06-01T10:00", "place": "3号\x00会议室"}).status_code == 303
    assert c(app, pw["enterprise"]).post(f"/pairings/{p.id}/outcome", data={
        "outcome": "failed", "note": "价格\x00不合适"}).status_code == 303
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.state == P.FAILED
    assert p.response_of("capability").message == "可以谈"
    assert (p.judgment_comment, p.meeting_place, p.outcome_note) == ("同意", "3号会议室", "价格不合适")
    comments = db.session.scalars(select(AuditEvent.comment).where(AuditEvent.target_type == "pairings")).all()
    assert not any("\x00" in (text or "") for text in comments)


def test_nul_characters_are_removed_from_a_fair_meeting_request(app, make, world):
    """Is a NUL in a fair meeting request's message removed instead of reaching the database?"""
    fair = fops.create_fair(world["coordinator"], fair_data())
    fops.open_fair(fair, world["coordinator"])
    need, cap = make.need(world["enterprise"]), make.capability(world["expert"])
    fops.register_listing(fair, need, world["enterprise"])
    fops.register_listing(fair, cap, world["expert"])
    db.session.commit()
    resp = c(app, world["enterprise"]).post(f"/fairs/{fair.id}/requests", data={
        "need_id": need.id, "capability_id": cap.id, "message": "a\x00b"})
    assert resp.status_code == 303
    assert db.session.scalars(select(MeetingRequest.message)).one() == "ab"


# --- 7. removing a fair meeting puts the pairing back ----------------------------------------------------

@pytest.fixture
def fair_meeting(make, world):
    """An open fair where the firm and the expert's approved pairing got a meeting from the scheduler."""
    coord = world["coordinator"]
    fair = fops.create_fair(coord, fair_data())
    fops.open_fair(fair, coord)
    need, cap = make.need(world["enterprise"]), make.capability(world["expert"])
    fops.register_listing(fair, need, world["enterprise"])
    fops.register_listing(fair, cap, world["expert"])
    p = ops.propose_pairing(need, cap, by=world["enterprise"])
    ops.respond(p, world["expert"], "capability", "interested")
    ops.judge(p, coord, True, "同意对接")
    fops.accept_request(fops.request_meeting(fair, need, cap, world["enterprise"]), world["expert"])
    fops.run_scheduler(fair, coord)
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED and p.meeting_at == T0
    return fair, p


def _cancelled(p):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == "pairing.meeting_cancelled",
                                                       AuditEvent.target_id == p.id)).all()


def test_clearing_the_schedule_puts_the_pairing_back_to_approved(app, world, fair_meeting):
    """After the coordinator clears the fair's schedule (and moves the fair), is the pairing approved again
    with no meeting time or place, audited as meeting_scheduled → approved, instead of pointing at a meeting
    that no longer exists? And can it be scheduled again?"""
    fair, p = fair_meeting
    assert c(app, world["coordinator"]).post(f"/fairs/{fair.id}/schedule/clear").status_code == 303
    db.session.expire_all()
    fops.update_fair(fair, world["coordinator"], {"starts_at": T0 + timedelta(days=1),
                                                  "ends_at": T0 + timedelta(days=1, hours=3)})
    db.session.commit()
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert (p.state, p.meeting_at, p.meeting_place) == (P.APPROVED, None, None)
    [event] = _cancelled(p)
    assert (event.from_state, event.to_state, event.actor_id) == (P.MEETING_SCHEDULED, P.APPROVED,
                                                                  world["coordinator"].id)
    fops.run_scheduler(db.session.get(Fair, fair.id), world["coordinator"])
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED and p.meeting_at == T0 + timedelta(days=1)


def test_a_pairing_rescheduled_elsewhere_is_left_alone(world, fair_meeting):
    """If the parties moved their meeting to another time after the fair scheduled it, does clearing the fair's
    schedule leave the pairing's own meeting in place?"""
    fair, p = fair_meeting
    ops.schedule_meeting(p, world["enterprise"], T0 + timedelta(days=7), "企业会议室")
    fops.clear_schedule(fair, world["coordinator"])
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED and p.meeting_place == "企业会议室"
    assert _cancelled(p) == []


def test_a_meeting_left_out_by_a_new_run_puts_the_pairing_back(world, fair_meeting, monkeypatch):
    """When the scheduler runs again and leaves the pairing's request out, is the pairing approved again (and
    a pairing whose meeting is only moved stays scheduled, without a cancellation)?"""
    fair, p = fair_meeting
    rid = db.session.scalars(select(Meeting.request_id)).one()
    monkeypatch.setattr(fops.sched, "schedule", lambda *a, **kw: sched.Schedule(placed={rid: (1, 2)}))
    fops.run_scheduler(fair, world["coordinator"])
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED and p.meeting_at == fair.slot_start(1) and _cancelled(p) == []
    monkeypatch.setattr(fops.sched, "schedule",
                        lambda *a, **kw: sched.Schedule(unscheduled={rid: "grid_full"}))
    fops.run_scheduler(fair, world["coordinator"])
    db.session.commit()
    assert (p.state, p.meeting_at) == (P.APPROVED, None) and len(_cancelled(p)) == 1


def test_clearing_is_refused_when_the_pairing_cannot_be_put_back(app, make, world):
    """A Chongqing coordinator organizes the fair, but the pairing's need is in Chengdu (out of their scope) and
    an admin ran the scheduler. Is their clear refused with a reason (409) and nothing removed, rather than
    leaving the pairing scheduled at a deleted meeting?"""
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    fair = fops.create_fair(coord, fair_data())
    fops.open_fair(fair, coord)
    need, cap = make.need(world["enterprise"], hub_city="chengdu"), make.capability(world["expert"])
    fops.register_listing(fair, need, world["enterprise"])
    fops.register_listing(fair, cap, world["expert"])
    p = ops.propose_pairing(need, cap, by=world["enterprise"])
    ops.respond(p, world["expert"], "capability", "interested")
    ops.judge(p, world["admin"], True, "同意")
    fops.accept_request(fops.request_meeting(fair, need, cap, world["enterprise"]), world["expert"])
    fops.run_scheduler(fair, world["admin"])
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED
    resp = c(app, coord).post(f"/fairs/{fair.id}/schedule/clear")
    assert resp.status_code == 409 and f"#{p.id}" in resp.text
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Meeting.id))) == 1
    assert db.session.get(Pairing, p.id).state == P.MEETING_SCHEDULED


def test_the_way_back_to_approved_is_only_the_meeting_cancellation(pw):
    """Is meeting_scheduled → approved absent from the transition table (so e.g. judging again cannot take
    it), and does cancel_meeting refuse any state other than meeting_scheduled?"""
    assert P.APPROVED not in ops.TRANSITIONS[P.MEETING_SCHEDULED]
    p = _approved(pw)
    with pytest.raises(WorkflowError):
        ops.cancel_meeting(p, pw["coord"], "x")
    ops.schedule_meeting(p, pw["coord"], T0, "重庆")
    with pytest.raises(WorkflowError):
        ops.judge(p, pw["coord"], True, "again")


# --- 8. client-supplied scores ---------------------------------------------------------------------------

def test_a_score_posted_by_a_party_is_ignored(app, pw):
    """The firm posts score=99 with its proposal: is it ignored (the coordinator is never shown a number the
    client made up)?"""
    resp = c(app, pw["enterprise"]).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "score": "99"})
    assert resp.status_code == 303
    assert db.session.scalars(select(Pairing.match_score)).one() is None


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e400", "x"])
def test_a_non_finite_score_is_refused(app, pw, score):
    """Is a coordinator's proposal or assignment with a score that is not a finite number refused (no pairing,
    no NaN stored), while a finite engine score is kept?"""
    coord = pw["coord"]
    resp = c(app, coord).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "score": score})
    assert resp.status_code == 303
    resp = c(app, coord).post("/coordinate/assign", data={"pick": f"{pw['need'].id}:{pw['cap'].id}:{score}"})
    assert resp.status_code == 400
    assert db.session.scalar(select(func.count(Pairing.id))) == 0
    with pytest.raises(WorkflowError, match="有限的数字"):
        ops.propose_pairing(pw["need"], pw["cap"], by=coord, score=float("nan"))
    db.session.rollback()
    resp = c(app, coord).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "score": "0.7312"})
    assert resp.status_code == 303
    assert db.session.scalars(select(Pairing.match_score)).one() == pytest.approx(0.7312)
