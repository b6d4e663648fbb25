"""Docking fairs: registration, meeting requests, answers, expiry, the persisted schedule and its exports."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.time import PROGRAMME_TZ, utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.fairs import operations as fops
from matchmaker.fairs import scheduler as sched
from matchmaker.fairs.cli import fairs_expire
from matchmaker.fairs.models import Fair, FairRegistration, Meeting, MeetingParticipant, MeetingRequest
from matchmaker.pairings import operations as ops
from matchmaker.pairings.models import Pairing
from matchmaker.pairings.models import PairingState as P
from tests.helpers import T0, fair_data, login


@pytest.fixture
def fair(world):
    fair = fops.create_fair(world["coordinator"], fair_data())
    fops.open_fair(fair, world["coordinator"])
    db.session.commit()
    return fair


@pytest.fixture
def parties(make, world, fair):
    """A registered need of 重庆甲公司 and a registered capability of the expert (某研究院)."""
    need = make.need(world["enterprise"], title="低温锂电池放电性能提升")
    cap = make.capability(world["expert"], title="低温电解液配方技术")
    fops.register_listing(fair, need, world["enterprise"])
    fops.register_listing(fair, cap, world["expert"])
    db.session.commit()
    return need, cap


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(m))
                 for m in (Fair, FairRegistration, MeetingRequest, Meeting, MeetingParticipant))


def c(app, user):
    return login(app.test_client(), user)


# --- the whole loop over HTTP -----------------------------------------------------------------------------

def test_the_whole_fair_loop_through_the_pages(app, world, make):
    """Can a coordinator create and open a fair, a firm and an expert register and agree on a meeting, the
    coordinator schedule it, and both see it in their schedule and calendar file?"""
    coord, ent, exp = world["coordinator"], world["enterprise"], world["expert"]
    resp = c(app, coord).post("/fairs/new", data={
        "title": "成渝对接会", "starts_at": "2031-05-20T09:00", "ends_at": "2031-05-20T12:00",
        "registration_deadline": "2031-05-18T18:00", "mode": "onsite", "place": "重庆国际博览中心",
        "hub_city": "chongqing", "organizer_id": str(world["firm"].id), "slot_minutes": "20", "tables": "5"})
    assert resp.status_code == 303, resp.text
    fair = db.session.scalars(select(Fair).where(Fair.title == "成渝对接会")).one()
    assert fair.starts_at == T0 and fair.n_slots == 9 and fair.status == "draft"
    assert c(app, ent).get(f"/fairs/{fair.id}").status_code == 404  # drafts are the coordinators' alone
    assert c(app, coord).post(f"/fairs/{fair.id}/open").status_code == 303

    need = make.need(ent, title="注塑件翘曲变形控制")
    cap = make.capability(exp, title="高分子材料成型仿真")
    assert c(app, ent).post(f"/fairs/{fair.id}/register", data={"listing": f"need:{need.id}"}).status_code == 303
    assert c(app, exp).post(f"/fairs/{fair.id}/register",
                            data={"listing": f"capability:{cap.id}"}).status_code == 303
    page = c(app, ent).get(f"/fairs/{fair.id}").text
    assert "高分子材料成型仿真" in page and 'name="capability_id"' in page

    resp = c(app, ent).post(f"/fairs/{fair.id}/requests", data={"need_id": need.id, "capability_id": cap.id,
                                                                 "message": "希望面谈"})
    assert resp.status_code == 303
    req = db.session.scalars(select(MeetingRequest).where(MeetingRequest.fair_id == fair.id)).one()
    assert c(app, exp).post(f"/fairs/{fair.id}/requests/{req.id}/accept").status_code == 303
    assert c(app, coord).post(f"/fairs/{fair.id}/schedule").status_code == 303
    db.session.expire_all()
    meeting = db.session.scalars(select(Meeting).where(Meeting.fair_id == fair.id)).one()
    assert meeting.request.status == "scheduled" and meeting.starts_at == T0
    assert {p.user_id for p in meeting.participants} == {ent.id, exp.id}

    grid = c(app, coord).get(f"/fairs/{fair.id}/schedule")
    assert grid.status_code == 200 and "注塑件翘曲变形控制" in grid.text
    assert "注塑件翘曲变形控制" in c(app, exp).get(f"/fairs/{fair.id}").text
    ics = c(app, exp).get(f"/fairs/{fair.id}/my.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    assert b"DTSTART:20310520T010000Z" in ics.data
    assert c(app, other := world["other_enterprise"]).get(f"/fairs/{fair.id}/my.ics").data.count(b"BEGIN:VEVENT") == 0
    assert other is not None


# --- exports ------------------------------------------------------------------------------------------------

@pytest.fixture
def scheduled(world, fair, parties):
    need, cap = parties
    req = fops.request_meeting(fair, need, cap, world["enterprise"], "面谈")
    fops.accept_request(req, world["expert"])
    fops.run_scheduler(fair, world["coordinator"])
    db.session.commit()
    return fair


def test_csv_export_opens_in_excel_with_chinese(app, world, scheduled):
    """Is the CSV UTF-8 with a BOM (so Excel shows Chinese), one row per meeting, served as a download with a
    safe filename, and for coordinators only?"""
    resp = c(app, world["coordinator"]).get(f"/fairs/{scheduled.id}/schedule.csv")
    assert resp.status_code == 200
    assert resp.data.startswith(b"\xef\xbb\xbf")
    text = resp.data.decode("utf-8-sig")
    rows = text.strip().split("\r\n")
    assert len(rows) == 2
    assert "低温锂电池放电性能提升" in rows[1] and "重庆甲公司" in rows[1] and "低温电解液配方技术" in rows[1]
    assert resp.headers["Content-Disposition"] == f'attachment; filename="fair-{scheduled.id}-schedule.csv"'
    assert c(app, world["enterprise"]).get(f"/fairs/{scheduled.id}/schedule.csv").status_code == 403


def test_icalendar_follows_rfc_5545(app, world, scheduled):
    """Does the fair's calendar use CRLF line endings, fold lines to at most 75 octets, and carry UID, DTSTAMP
    and UTC DTSTART/DTEND for every meeting?"""
    resp = c(app, world["coordinator"]).get(f"/fairs/{scheduled.id}/schedule.ics")
    assert resp.status_code == 200
    body = resp.data
    assert body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")
    lines = body.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines)  # the long Chinese description was folded
    unfolded = body.replace(b"\r\n ", b"").decode("utf-8")
    for prop in ("UID:fair-", "DTSTAMP:", "DTSTART:20310520T010000Z", "DTEND:20310520T013000Z"):
        assert prop in unfolded
    assert "低温锂电池放电性能提升" in unfolded
    assert resp.headers["Content-Disposition"].endswith('.ics"')


@pytest.mark.nodb
def test_folding_never_splits_a_character():
    """Is a long line of multi-byte characters folded at character boundaries, each line ≤ 75 octets?"""
    from matchmaker.fairs.exports import fold
    folded = fold("SUMMARY:" + "洽谈" * 80)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == "SUMMARY:" + "洽谈" * 80


# --- bad input --------------------------------------------------------------------------------------------

def test_a_fair_that_ends_before_it_starts_is_refused(app, world):
    """Is a fair ending before it starts refused with a message (form 400, service 400) and nothing stored?"""
    before = counts()
    resp = c(app, world["coordinator"]).post("/fairs/new", data={
        "title": "时间错乱的对接会", "starts_at": "2031-05-20T12:00", "ends_at": "2031-05-20T09:00",
        "registration_deadline": "2031-05-18T18:00", "mode": "onsite", "place": "某地", "slot_minutes": "30",
        "tables": "3", "organizer_id": "0"})
    assert resp.status_code == 400 and ("end after" in resp.text or "结束" in resp.text)
    with pytest.raises(WorkflowError) as exc:
        fops.create_fair(world["coordinator"], fair_data(registration_deadline=T0 + timedelta(days=1)))
    assert exc.value.status == 400
    with pytest.raises(WorkflowError):
        fops.create_fair(world["coordinator"], fair_data(mode="video", video_url=None))
    with pytest.raises(WorkflowError):
        fops.create_fair(world["coordinator"], fair_data(mode="video", video_url="javascript://x%0aalert(1)"))
    db.session.rollback()
    assert counts() == before
    with pytest.raises(IntegrityError):  # the database refuses it too
        with db.session.begin_nested():
            db.session.add(Fair(**fair_data(ends_at=T0 - timedelta(hours=1)), coordinator_id=world["coordinator"].id))


def test_only_coordinators_create_fairs(app, world):
    """Can an enterprise member create a fair? No: 403, nothing stored."""
    before = counts()
    resp = c(app, world["enterprise"]).post("/fairs/new", data={"title": "企业自办对接会"})
    assert resp.status_code == 403
    assert counts() == before


def test_registering_a_foreign_listing_is_refused(app, world, make, fair):
    """Can a firm register another organization's listing (or the expert's capability)? 403, nothing stored."""
    foreign = make.need(world["other_enterprise"], hub_city="chengdu")
    cap = make.capability(world["expert"])
    before = counts()
    for listing in (f"need:{foreign.id}", f"capability:{cap.id}"):
        resp = c(app, world["enterprise"]).post(f"/fairs/{fair.id}/register", data={"listing": listing})
        assert resp.status_code == 403
    assert c(app, world["enterprise"]).post(f"/fairs/{fair.id}/register",
                                            data={"listing": "need:abc"}).status_code == 400
    assert counts() == before


def test_unpublished_or_twice_registered_listings_are_refused(app, world, make, fair):
    """Is a draft listing, or a listing already registered, refused with 409 and nothing stored?"""
    draft = make.need(world["enterprise"], status="draft")
    need = make.need(world["enterprise"])
    fops.register_listing(fair, need, world["enterprise"])
    db.session.commit()
    before = counts()
    for listing in (draft, need):
        resp = c(app, world["enterprise"]).post(f"/fairs/{fair.id}/register", data={"listing": f"need:{listing.id}"})
        assert resp.status_code == 409
    assert counts() == before


def test_requesting_a_meeting_with_an_unregistered_listing_is_refused(app, world, make, fair, parties):
    """Can a firm request a meeting with a capability that is not registered for the fair? 409, no request."""
    need, _cap = parties
    unregistered = make.capability(world["expert"], title="未报名的能力")
    before = counts()
    resp = c(app, world["enterprise"]).post(f"/fairs/{fair.id}/requests",
                                            data={"need_id": need.id, "capability_id": unregistered.id})
    assert resp.status_code == 409 and ("registered" in resp.text or "报名" in resp.text)
    assert counts() == before


def test_requesting_for_someone_elses_listings_is_refused(app, world, fair, parties):
    """Can another firm request a meeting between two listings that are not its own? 403, nothing stored."""
    need, cap = parties
    before = counts()
    resp = c(app, world["other_enterprise"]).post(f"/fairs/{fair.id}/requests",
                                                  data={"need_id": need.id, "capability_id": cap.id})
    assert resp.status_code == 403
    assert counts() == before


def test_same_organization_cannot_meet_itself(world, make, fair):
    """Is a meeting between a need and a capability of the same organization refused?"""
    colleague = make.user(Role.EXPERT, org=world["firm"])
    need = make.need(world["enterprise"])
    cap = make.capability(colleague)
    fops.register_listing(fair, need, world["enterprise"])
    fops.register_listing(fair, cap, colleague)
    with pytest.raises(WorkflowError) as exc:
        fops.request_meeting(fair, need, cap, world["enterprise"])
    assert exc.value.status == 409
    own_name = make.capability(colleague, title="以个人名义发布的能力")  # a colleague's capability in own name
    own_name.organization_id = None
    db.session.commit()
    fops.register_listing(fair, own_name, colleague)
    with pytest.raises(WorkflowError):
        fops.request_meeting(fair, need, own_name, colleague)


def test_double_requests_are_refused(app, world, fair, parties):
    """Is a second request for the same need × capability at the same fair refused (either side), with one row
    kept — and does the database refuse it too?"""
    need, cap = parties
    fops.request_meeting(fair, need, cap, world["enterprise"])
    db.session.commit()
    before = counts()
    for user in (world["enterprise"], world["expert"]):
        resp = c(app, user).post(f"/fairs/{fair.id}/requests", data={"need_id": need.id, "capability_id": cap.id})
        assert resp.status_code == 409
    assert counts() == before
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            db.session.add(MeetingRequest(fair_id=fair.id, need_id=need.id, capability_id=cap.id,
                                          requested_by_side="capability", requester_id=world["expert"].id))


def test_accepting_someone_elses_request_is_refused(app, world, fair, parties):
    """Can the requester accept its own request, or a stranger accept it? Refused (403 / 404), still requested."""
    need, cap = parties
    req = fops.request_meeting(fair, need, cap, world["enterprise"])
    db.session.commit()
    assert c(app, world["enterprise"]).post(f"/fairs/{fair.id}/requests/{req.id}/accept").status_code == 403
    assert c(app, world["other_enterprise"]).post(f"/fairs/{fair.id}/requests/{req.id}/accept").status_code == 404
    assert c(app, world["expert"]).post(f"/fairs/{fair.id}/requests/999999/accept").status_code == 404
    db.session.expire_all()
    assert db.session.get(MeetingRequest, req.id).status == "requested"
    assert c(app, world["expert"]).post(f"/fairs/{fair.id}/requests/{req.id}/decline").status_code == 303
    assert c(app, world["expert"]).post(f"/fairs/{fair.id}/requests/{req.id}/accept").status_code == 409
    db.session.expire_all()
    assert db.session.get(MeetingRequest, req.id).status == "declined"


def test_scheduling_a_closed_fair_is_refused(app, world, fair, parties):
    """Is running the scheduler on a closed fair refused with a reason, leaving no meeting?"""
    need, cap = parties
    fops.accept_request(fops.request_meeting(fair, need, cap, world["enterprise"]), world["expert"])
    fops.close_fair(fair, world["coordinator"])
    db.session.commit()
    before = counts()
    resp = c(app, world["coordinator"]).post(f"/fairs/{fair.id}/schedule")
    assert resp.status_code == 409 and ("open fair" in resp.text or "开放" in resp.text)
    assert counts() == before
    assert c(app, world["enterprise"]).post(f"/fairs/{fair.id}/schedule").status_code == 403
    # an illegal status change is refused too
    assert c(app, world["coordinator"]).post(f"/fairs/{fair.id}/close").status_code == 409


def test_coordinators_of_another_hub_city_cannot_manage(app, make, world, fair):
    """Can a coordinator scoped to Qingdao run the scheduler of a Chongqing fair? 403."""
    qingdao = make.user(Role.COORDINATOR, hub_city="qingdao")
    assert c(app, qingdao).post(f"/fairs/{fair.id}/schedule").status_code == 403
    assert c(app, qingdao).get(f"/fairs/{fair.id}/schedule").status_code == 403


# --- expiry ---------------------------------------------------------------------------------------------------

def test_unanswered_requests_expire_at_the_deadline(app, world, fair, parties, make):
    """Do requests still unanswered after the registration deadline expire (via the CLI command), while
    answered ones stay as they are?"""
    need, cap = parties
    other_cap = make.capability(world["expert"], title="第二项能力技术")
    fops.register_listing(fair, other_cap, world["expert"])
    open_req = fops.request_meeting(fair, need, cap, world["enterprise"])
    answered = fops.request_meeting(fair, need, other_cap, world["enterprise"])
    fops.accept_request(answered, world["expert"])
    db.session.commit()
    assert fops.expire_unanswered(now=fair.registration_deadline - timedelta(minutes=1)) == 0
    fair.registration_deadline = datetime.now(timezone.utc) - timedelta(minutes=1)
    db.session.commit()
    # past the deadline, an answer is refused even before the expiry job has run
    with pytest.raises(WorkflowError) as exc:
        fops.accept_request(open_req, world["expert"])
    assert exc.value.status == 409 and open_req.status == "requested"
    result = app.test_cli_runner().invoke(fairs_expire)
    assert result.exit_code == 0 and "expired: 1" in result.output
    db.session.expire_all()
    assert db.session.get(MeetingRequest, open_req.id).status == "expired"
    assert db.session.get(MeetingRequest, answered.id).status == "accepted"


# --- schedule persistence and constraints ---------------------------------------------------------------------

def test_the_database_refuses_a_double_booked_person_or_table(world, scheduled):
    """Even bypassing the scheduler, can a second meeting use a taken table, or put a person in two meetings of
    the same slot? The database refuses both."""
    meeting = db.session.scalars(select(Meeting).where(Meeting.fair_id == scheduled.id)).one()
    other_req = MeetingRequest(fair_id=scheduled.id, need_id=meeting.request.need_id,
                               capability_id=meeting.request.capability_id, requested_by_side="need",
                               requester_id=world["enterprise"].id)
    with pytest.raises(IntegrityError):  # same table, same slot
        with db.session.begin_nested():
            db.session.add(Meeting(fair_id=scheduled.id, request_id=meeting.request_id, slot=meeting.slot,
                                   table_no=meeting.table_no, starts_at=meeting.starts_at, ends_at=meeting.ends_at))
    with pytest.raises(IntegrityError):  # the firm's contact twice in one slot
        with db.session.begin_nested():
            need2 = meeting.request.need
            other_req.need_id = need2.id
            db.session.add(other_req)
            db.session.flush()
            m2 = Meeting(fair_id=scheduled.id, request_id=other_req.id, slot=meeting.slot, table_no=4,
                         starts_at=meeting.starts_at, ends_at=meeting.ends_at)
            m2.participants.append(MeetingParticipant(user_id=world["enterprise"].id, fair_id=scheduled.id,
                                                      slot=meeting.slot, side="need"))
            db.session.add(m2)


def test_running_the_scheduler_again_keeps_locked_meetings_and_replaces_the_rest(world, make, fair, parties):
    """Does a second run keep locked meetings where they are, rewrite the others in one go, and never
    double-book anyone across many requests?"""
    need, cap = parties
    coord = world["coordinator"]
    experts = [make.user(Role.EXPERT, org=world["institute"]) for _ in range(3)]
    firms = [world["enterprise"]] + [make.user(Role.ENTERPRISE, org=make.org()) for _ in range(3)]
    needs = [need] + [make.need(f, title=f"需求{i}号技术问题") for i, f in enumerate(firms[1:])]
    caps = [cap] + [make.capability(e, title=f"能力{i}号技术方案") for i, e in enumerate(experts)]
    for n, f in zip(needs[1:], firms[1:], strict=True):
        fops.register_listing(fair, n, f)
    for cp, e in zip(caps[1:], experts, strict=True):
        fops.register_listing(fair, cp, e)
    owners_of_caps = [world["expert"]] + experts
    for n, f in zip(needs, firms, strict=True):
        for cp, e in zip(caps, owners_of_caps, strict=True):
            fops.accept_request(fops.request_meeting(fair, n, cp, f), e)
    first = fops.run_scheduler(fair, coord)
    db.session.commit()
    assert first.count == 16 and not first.unscheduled  # 6 slots × 4 tables, everyone meets everyone
    locked = db.session.scalars(select(Meeting).where(Meeting.fair_id == fair.id).order_by(Meeting.id)).first()
    fops.set_locked(locked, coord, True)
    db.session.commit()
    cell = (locked.id, locked.slot, locked.table_no)
    second = fops.run_scheduler(fair, coord)
    db.session.commit()
    db.session.expire_all()
    meetings = db.session.scalars(select(Meeting).where(Meeting.fair_id == fair.id)).all()
    assert len(meetings) == 16 and second.count == 15
    kept = db.session.get(Meeting, cell[0])
    assert (kept.id, kept.slot, kept.table_no) == cell
    seen = set()
    for m in meetings:
        for p in m.participants:
            assert (p.user_id, m.slot) not in seen
            seen.add((p.user_id, m.slot))
    assert all(m.request.status == "scheduled" for m in meetings)


def test_an_approved_pairing_moves_to_meeting_scheduled(world, fair, parties):
    """When a scheduled meeting belongs to an approved pairing, does the pairing become meeting_scheduled with
    the slot's time and the fair's place and table?"""
    from matchmaker.pairings import operations as pops
    need, cap = parties
    pairing = pops.propose_pairing(need, cap, by=world["enterprise"])
    pops.respond(pairing, world["expert"], "capability", "interested")
    pops.judge(pairing, world["coordinator"], True, "同意对接")
    db.session.commit()
    assert pairing.state == "approved"
    req = fops.request_meeting(fair, need, cap, world["enterprise"])
    assert req.pairing_id == pairing.id
    fops.accept_request(req, world["expert"])
    fops.run_scheduler(fair, world["coordinator"])
    db.session.commit()
    db.session.expire_all()
    assert pairing.state == "meeting_scheduled"
    assert pairing.meeting_at == T0 and "重庆国际博览中心" in pairing.meeting_place


def test_times_and_grid_cannot_change_under_a_schedule(app, world, scheduled):
    """Once meetings are scheduled, is an edit of the fair's times refused with a reason (and the fair
    unchanged), while the description can still be edited?"""
    coord = world["coordinator"]
    form = {"title": scheduled.title, "starts_at": "2031-05-20T10:00", "ends_at": "2031-05-20T12:00",
            "registration_deadline": "2031-05-18T09:00", "mode": "onsite", "place": scheduled.place,
            "hub_city": "chongqing", "organizer_id": "0", "slot_minutes": "30", "tables": "4"}
    resp = c(app, coord).post(f"/fairs/{scheduled.id}/edit", data=form)
    assert resp.status_code == 400 and ("clear the schedule" in resp.text or "排期" in resp.text)
    db.session.expire_all()
    assert db.session.get(Fair, scheduled.id).starts_at == T0
    form.update(starts_at="2031-05-20T09:00", ends_at="2031-05-20T12:00", description="新增：请携带样品。")
    assert c(app, coord).post(f"/fairs/{scheduled.id}/edit", data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Fair, scheduled.id).description == "新增：请携带样品。"
    # after clearing the schedule, the times can move; the meetings' requests are accepted again
    assert c(app, coord).post(f"/fairs/{scheduled.id}/schedule/clear").status_code == 303
    form.update(starts_at="2031-05-20T10:00")
    assert c(app, coord).post(f"/fairs/{scheduled.id}/edit", data=form).status_code == 303
    db.session.expire_all()
    assert db.session.get(Fair, scheduled.id).starts_at == T0 + timedelta(hours=1)
    assert db.session.scalar(select(func.count()).select_from(Meeting)) == 0
    assert db.session.scalars(select(MeetingRequest.status)).all() == ["accepted"]


# -- review fixes (2026-12-02): two fairs at once, nights, the solver, states against the clock, times, video ---


def beijing(dt) -> str:
    return dt.astimezone(PROGRAMME_TZ).strftime("%Y-%m-%d %H:%M")


def _accepted(fair, need, need_owner, cap, cap_owner) -> MeetingRequest:
    req = fops.request_meeting(fair, need, cap, need_owner)
    fops.accept_request(req, cap_owner)
    return req


def test_a_person_meeting_at_another_fair_is_left_free_then(world, make, fair, parties):
    """Regression (2026-12-02): The firm meets the expert at fair A at 09:00–09:30. At fair B (20-minute slots from 09:10) the firm has
    another meeting: is it left free at 09:10 (which overlaps) and placed at 09:30 instead?"""
    need, cap = parties
    coord, ent = world["coordinator"], world["enterprise"]
    _accepted(fair, need, ent, cap, world["expert"])
    fops.run_scheduler(fair, coord)
    other = fops.create_fair(coord, fair_data(title="第二场成渝对接会", starts_at=T0 + timedelta(minutes=10),
                                              ends_at=T0 + timedelta(hours=2), slot_minutes=20))
    fops.open_fair(other, coord)
    expert2 = make.user(Role.EXPERT, org=world["institute"])
    cap2 = make.capability(expert2, title="电池热管理仿真技术")
    fops.register_listing(other, need, ent)
    fops.register_listing(other, cap2, expert2)
    _accepted(other, need, ent, cap2, expert2)
    result = fops.run_scheduler(other, coord)
    db.session.commit()
    assert result.count == 1
    [meeting] = fops.meetings(other)
    assert beijing(meeting.starts_at) == "2031-05-20 09:30"
    [first] = fops.meetings(fair)
    assert beijing(first.starts_at) == "2031-05-20 09:00"


def test_a_person_with_no_slot_left_beside_another_fair_is_reported_busy(world, make, fair, parties):
    """Regression (2026-12-02): If fair B's only slot overlaps the firm's meeting at fair A, is B's request left out as "a participant
    is busy", with nothing written that double-books the firm?"""
    need, cap = parties
    coord, ent = world["coordinator"], world["enterprise"]
    _accepted(fair, need, ent, cap, world["expert"])
    fops.run_scheduler(fair, coord)
    other = fops.create_fair(coord, fair_data(title="第二场成渝对接会", ends_at=T0 + timedelta(minutes=30)))
    fops.open_fair(other, coord)
    expert2 = make.user(Role.EXPERT, org=world["institute"])
    cap2 = make.capability(expert2, title="电池热管理仿真技术")
    fops.register_listing(other, need, ent)
    fops.register_listing(other, cap2, expert2)
    req = _accepted(other, need, ent, cap2, expert2)
    result = fops.run_scheduler(other, coord)
    assert result.count == 0 and result.unscheduled == {req.id: sched.REASON_PERSON_BUSY}
    assert fops.meetings(other) == [] and req.unscheduled_reason == sched.REASON_PERSON_BUSY


@pytest.fixture
def three_day_fair(world, make):
    """An open fair from the 20th 09:00 to the 22nd 17:00 (Beijing) in 2-hour slots, one table; the firm has six
    accepted requests with six experts, so it needs six slots one after the other."""
    coord, ent = world["coordinator"], world["enterprise"]
    fair = fops.create_fair(coord, fair_data(title="三天的成渝对接会", ends_at=T0 + timedelta(days=2, hours=8),
                                             slot_minutes=120, tables=1))
    fops.open_fair(fair, coord)
    need = make.need(ent, title="低温锂电池放电性能提升")
    fops.register_listing(fair, need, ent)
    for i in range(6):
        expert = make.user(Role.EXPERT, org=world["institute"])
        cap = make.capability(expert, title=f"能力{i}号技术方案")
        fops.register_listing(fair, cap, expert)
        _accepted(fair, need, ent, cap, expert)
    db.session.commit()
    return fair


def test_a_multi_day_fair_has_no_meetings_at_night(world, three_day_fair):
    """Regression (2026-12-02): Are the firm's six meetings placed between 08:00 and 18:00 Beijing time — four on the first day (the
    17:00–19:00 slot reaches into the night), then the earliest daytime slots of the second day?"""
    result = fops.run_scheduler(three_day_fair, world["coordinator"])
    db.session.commit()
    assert result.count == 6
    starts = sorted(beijing(m.starts_at) for m in fops.meetings(three_day_fair))
    assert starts == ["2031-05-20 09:00", "2031-05-20 11:00", "2031-05-20 13:00", "2031-05-20 15:00",
                      "2031-05-21 09:00", "2031-05-21 11:00"]


def test_the_grid_of_a_multi_day_fair_shows_dates_and_skips_the_nights(app, world, three_day_fair):
    """Regression (2026-12-02): Does the schedule grid of a fair over several days label every row with its date, and leave out the
    night rows, while a one-day fair's grid still shows the time alone?"""
    fops.run_scheduler(three_day_fair, world["coordinator"])
    db.session.commit()
    page = c(app, world["coordinator"]).get(f"/fairs/{three_day_fair.id}/schedule")
    assert page.status_code == 200
    assert "2031-05-21 09:00" in page.text and "2031-05-20 09:00" in page.text
    assert "2031-05-20 19:00" not in page.text and "2031-05-21 03:00" not in page.text


def test_a_one_day_fair_grid_keeps_the_time_alone(app, world, scheduled):
    """Regression (2026-12-02): Is a one-day fair's grid still labelled 09:00, 09:30 … without a date?"""
    page = c(app, world["coordinator"]).get(f"/fairs/{scheduled.id}/schedule").text
    assert ">09:00<" in page and ">11:30<" in page and "2031-05-20 09:00<" not in page


def test_the_solver_stops_before_waiting_writers_give_up(world, fair, parties, monkeypatch):
    """Regression (2026-12-02): The scheduler runs inside the request that holds SQLite's write lock; other writers wait 5 seconds
    (busy timeout). Does the page's run give the exact solver less time than that?"""
    need, cap = parties
    _accepted(fair, need, world["enterprise"], cap, world["expert"])
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return sched.Schedule()

    monkeypatch.setattr(fops.sched, "schedule", spy)
    fops.run_scheduler(fair, world["coordinator"])
    assert seen["time_limit"] < 5


def test_a_fair_is_marked_held_only_once_it_has_ended(app, world, fair):
    """Regression (2026-12-02): Can a closed fair that has not happened yet be marked held? 409 with the reason, still closed; once its
    end has passed, it can."""
    coord = world["coordinator"]
    fops.close_fair(fair, coord)
    db.session.commit()
    resp = c(app, coord).post(f"/fairs/{fair.id}/held")
    assert resp.status_code == 409 and ("ended" in resp.text or "结束" in resp.text)
    db.session.expire_all()
    assert db.session.get(Fair, fair.id).status == "closed"
    assert "/held" not in c(app, coord).get(f"/fairs/{fair.id}").text  # no button either
    with pytest.raises(WorkflowError):
        fops.mark_held(fair, coord, now=fair.ends_at - timedelta(minutes=1))
    fops.mark_held(fair, coord, now=fair.ends_at)
    assert fair.status == "held"


def test_a_started_fair_keeps_its_schedule(app, world, scheduled):
    """Regression (2026-12-02): Once the fair has started, are running the scheduler again and clearing the schedule refused (409, with
    the reason), the meetings kept and their requests still scheduled?"""
    coord = world["coordinator"]
    now = utcnow()  # the fair started an hour ago
    scheduled.registration_deadline = now - timedelta(days=1)
    scheduled.starts_at, scheduled.ends_at = now - timedelta(hours=1), now + timedelta(hours=2)
    db.session.commit()
    for url in (f"/fairs/{scheduled.id}/schedule/clear", f"/fairs/{scheduled.id}/schedule"):
        resp = c(app, coord).post(url)
        assert resp.status_code == 409 and ("started" in resp.text or "开始" in resp.text)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Meeting.id)).where(Meeting.fair_id == scheduled.id)) == 1
    assert db.session.scalars(select(MeetingRequest.status)).all() == ["scheduled"]
    page = c(app, coord).get(f"/fairs/{scheduled.id}/schedule").text
    assert "schedule/clear" not in page
    for op in (fops.run_scheduler, fops.clear_schedule):  # the service refuses it too
        with pytest.raises(WorkflowError) as exc:
            op(db.session.get(Fair, scheduled.id), coord)
        assert exc.value.status == 409


def test_meetings_of_a_held_fair_cannot_be_locked(app, world, scheduled):
    """Regression (2026-12-02): Can a coordinator lock or unlock a meeting of a fair that has been held? 409, the meeting unchanged."""
    meeting = fops.meetings(scheduled)[0]
    scheduled.status = "held"
    db.session.commit()
    resp = c(app, world["coordinator"]).post(f"/fairs/{scheduled.id}/meetings/{meeting.id}/lock",
                                             data={"locked": "1"})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.get(Meeting, meeting.id).locked is False


def test_the_list_shows_the_end_date_of_a_multi_day_fair(app, world, fair):
    """Regression (2026-12-02): Does the fair list show the end date of a fair over several days (and only the end time of a one-day
    fair)?"""
    coord = world["coordinator"]
    multi = fops.create_fair(coord, fair_data(title="三天的成渝对接会", ends_at=T0 + timedelta(days=2, hours=8)))
    fops.open_fair(multi, coord)
    db.session.commit()
    page = c(app, world["enterprise"]).get("/fairs").text
    assert "2031-05-20 09:00 – 2031-05-22 17:00" in page
    assert "2031-05-20 09:00 – 12:00" in page


def test_the_csv_lists_beijing_times(app, world, scheduled):
    """Regression (2026-12-02): Does the CSV give the meeting at 09:00 Beijing time as 09:00 (as the pages do, not 01:00 UTC) and say
    so in its header?"""
    rows = c(app, world["coordinator"]).get(f"/fairs/{scheduled.id}/schedule.csv").data \
        .decode("utf-8-sig").strip().split("\r\n")
    assert "Beijing" in rows[0] or "北京" in rows[0]
    assert "UTC" not in rows[0]
    assert rows[1].startswith("2031-05-20 09:00,2031-05-20 09:30,")


def test_the_video_link_is_for_registered_participants_and_managers(app, world, make):
    """Regression (2026-12-02): Is a video fair's link shown to the firm with a registered need, the expert behind a registered
    capability and the coordinator — but not to a signed-in firm without a registered listing, nor to
    visitors?"""
    coord = world["coordinator"]
    link = "https://meeting.example.test/room-8848"
    fair = fops.create_fair(coord, fair_data(mode="video", place=None, video_url=link))
    fops.open_fair(fair, coord)
    fops.register_listing(fair, make.need(world["enterprise"]), world["enterprise"])
    fops.register_listing(fair, make.capability(world["expert"]), world["expert"])
    db.session.commit()
    for user in (world["enterprise"], world["expert"], coord, world["admin"]):
        assert link in c(app, user).get(f"/fairs/{fair.id}").text, user
    assert link not in c(app, world["other_enterprise"]).get(f"/fairs/{fair.id}").text
    assert link not in app.test_client().get(f"/fairs/{fair.id}").text
    assert not fair.can_see_video_link(world["other_enterprise"])


# -- pairing and fair review (2026-12-01): fair scope, lost races, dates out of range, NUL, meetings removed ---


@pytest.mark.parametrize("hub_city", ["chengdu", ""])
def test_a_scoped_coordinator_cannot_move_or_unscope_their_fair(app, make, hub_city):
    """Regression (2026-12-01): Can a coordinator scoped to Chongqing edit their fair to another hub city, or blank it? Both are
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


@pytest.mark.parametrize("name", ["register_listing", "request_meeting", "run_scheduler", "clear_schedule"])
@pytest.mark.parametrize("error", [StaleDataError("stale"), IntegrityError("INSERT", {}, Exception("unique"))])
def test_a_lost_race_in_the_fair_operations_is_409(app, make, world, monkeypatch, name, error):
    """Regression (2026-12-01): Registering, requesting a meeting, running or clearing the scheduler: when the operation's flush loses a
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


@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59", "1999-12-31T23:59", "2101-01-01T00:00"])
def test_a_fair_date_out_of_range_is_a_form_error(app, world, when):
    """Regression (2026-12-01): Does a fair with a start or deadline in year 1, 9999 or just outside 2000–2100 get a 400 with the form
    error (no OverflowError → 500), and no fair?"""
    form = {"title": "成渝对接会", "starts_at": when, "ends_at": "2031-05-20T12:00", "registration_deadline": when,
            "mode": "onsite", "place": "重庆", "hub_city": "chongqing", "organizer_id": "0", "slot_minutes": "20",
            "tables": "5"}
    resp = c(app, world["coordinator"]).post("/fairs/new", data=form)
    assert resp.status_code == 400
    assert "2000" in resp.text and "2100" in resp.text
    assert db.session.scalar(select(func.count(Fair.id))) == 0


def test_a_fair_with_more_slots_than_a_schedule_can_hold_is_refused(app, world):
    """Regression (2026-12-01): Is a year-long fair of 5-minute meetings (105,000 slots for the grid and the scheduler) refused with the
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


def test_nul_characters_are_removed_from_a_fair_meeting_request(app, make, world):
    """Regression (2026-12-01): Is a NUL in a fair meeting request's message removed instead of reaching the database?"""
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


def fair_form(fair, **kw):
    form = {"title": fair.title, "starts_at": "2031-05-20T09:00", "ends_at": "2031-05-20T12:00",
            "registration_deadline": "2031-05-18T09:00", "mode": "onsite", "place": fair.place,
            "hub_city": fair.hub_city or "", "organizer_id": "0", "slot_minutes": "30", "tables": "4"}
    form.update(kw)
    return form


def _cancelled(p):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == "pairing.meeting_cancelled",
                                                       AuditEvent.target_id == p.id)).all()


def test_clearing_the_schedule_puts_the_pairing_back_to_approved(app, world, fair_meeting):
    """Regression (2026-12-01): After the coordinator clears the fair's schedule (and moves the fair), is the pairing approved again
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
    """Regression (2026-12-01): If the parties moved their meeting to another time after the fair scheduled it, does clearing the fair's
    schedule leave the pairing's own meeting in place?"""
    fair, p = fair_meeting
    ops.schedule_meeting(p, world["enterprise"], T0 + timedelta(days=7), "企业会议室")
    fops.clear_schedule(fair, world["coordinator"])
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED and p.meeting_place == "企业会议室"
    assert _cancelled(p) == []


def test_a_meeting_left_out_by_a_new_run_puts_the_pairing_back(world, fair_meeting, monkeypatch):
    """Regression (2026-12-01): When the scheduler runs again and leaves the pairing's request out, is the pairing approved again (and
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
    """Regression (2026-12-01): A Chongqing coordinator organizes the fair, but the pairing's need is in Chengdu (out of their scope) and
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
