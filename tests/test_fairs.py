"""Docking fairs: registration, meeting requests, answers, expiry, the persisted schedule and its exports."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from conftest import login
from matchmaker.core.enums import Role
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.fairs import operations as fops
from matchmaker.fairs.cli import fairs_expire
from matchmaker.fairs.models import Fair, FairRegistration, Meeting, MeetingParticipant, MeetingRequest

T0 = datetime(2031, 5, 20, 1, 0, tzinfo=timezone.utc)  # 09:00 Beijing time


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch):
    """Tests here make many users; a cheap argon2 profile keeps them quick."""
    from argon2 import PasswordHasher

    import matchmaker.accounts.models as account_models
    monkeypatch.setattr(account_models, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def fair_data(**kw):
    data = {"title": "成渝科技成果供需对接洽谈会", "description": "两地企业与专家一对一洽谈。", "starts_at": T0,
            "ends_at": T0 + timedelta(hours=3), "registration_deadline": T0 - timedelta(days=2),
            "mode": "onsite", "place": "重庆国际博览中心 N1 馆", "hub_city": "chongqing", "slot_minutes": 30,
            "tables": 4}
    data.update(kw)
    return data


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
    for n, f in zip(needs[1:], firms[1:]):
        fops.register_listing(fair, n, f)
    for cp, e in zip(caps[1:], experts):
        fops.register_listing(fair, cp, e)
    owners_of_caps = [world["expert"]] + experts
    for n, f in zip(needs, firms):
        for cp, e in zip(caps, owners_of_caps):
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
