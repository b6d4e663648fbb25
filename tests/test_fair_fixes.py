"""Regression tests for the docking-fair review: people booked at two fairs at once, meetings in the middle of the
night, the exact solver run for nothing, fair states against the clock, times on the fair pages and the CSV, and
the video link shown to everyone signed in."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conftest import login
from matchmaker.core.enums import Role
from matchmaker.core.time import PROGRAMME_TZ, utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.fairs import operations as fops
from matchmaker.fairs import scheduler as sched
from matchmaker.fairs.models import Fair, Meeting, MeetingRequest
from test_fairs import T0, _fast_password_hashing, fair, fair_data, parties, scheduled  # noqa: F401  (fixtures)
from test_scheduler import _brute_force


def c(app, user):
    return login(app.test_client(), user)


def beijing(dt) -> str:
    return dt.astimezone(PROGRAMME_TZ).strftime("%Y-%m-%d %H:%M")


def _accepted(fair, need, need_owner, cap, cap_owner) -> MeetingRequest:
    req = fops.request_meeting(fair, need, cap, need_owner)
    fops.accept_request(req, cap_owner)
    return req


# --- 1. one person, two fairs at the same time ------------------------------------------------------------

def test_a_person_meeting_at_another_fair_is_left_free_then(world, make, fair, parties):
    """The firm meets the expert at fair A at 09:00–09:30. At fair B (20-minute slots from 09:10) the firm has
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
    """If fair B's only slot overlaps the firm's meeting at fair A, is B's request left out as "a participant
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


def test_the_check_reports_a_person_busy_elsewhere_and_a_closed_slot():
    """Does ``check`` report a meeting of someone busy elsewhere in that slot, and one in a closed (night) slot,
    while the same meeting in a free daytime slot passes?"""
    requests = [sched.Request(1, frozenset({"a", "b"}))]
    assert sched.check(requests, {1: (0, 1)}, 2, 1, unavailable={"a": {0}})
    assert sched.check(requests, {1: (0, 1)}, 2, 1, closed=[0])
    assert sched.check(requests, {1: (1, 1)}, 2, 1, closed=[0], unavailable={"a": {0}}) == []
    result = sched.schedule(requests, 2, 1, unavailable={"b": {0}})
    assert result.placed == {1: (1, 1)}


# --- 2. no meetings at night, earlier days first ------------------------------------------------------------

def test_only_the_nights_of_a_multi_day_fair_are_closed():
    """Are the slots of a fair over three days open only from 08:00 to 18:00 Beijing time and counted by day,
    while a one-day fair — even an evening or a late-night one — keeps every slot?"""
    multi = Fair(starts_at=T0, ends_at=T0 + timedelta(days=2, hours=8), slot_minutes=60)  # 20th 09:00 – 22nd 17:00
    days = multi.slot_days()
    open_starts = [multi.slot_start(s).astimezone(PROGRAMME_TZ) for s, d in enumerate(days) if d is not None]
    assert all(8 <= t.hour < 18 for t in open_starts)
    assert [d for d in days if d is not None] == [0] * 9 + [1] * 10 + [2] * 9
    assert len(multi.meeting_slots) == 28
    day = Fair(starts_at=T0, ends_at=T0 + timedelta(hours=3), slot_minutes=30)
    evening = Fair(starts_at=T0 + timedelta(hours=10), ends_at=T0 + timedelta(hours=13), slot_minutes=30)
    late = Fair(starts_at=T0 + timedelta(hours=13, minutes=30), ends_at=T0 + timedelta(hours=16, minutes=30),
                slot_minutes=30)  # 22:30 – 01:30
    for one_day in (day, evening, late):
        assert one_day.nights() == [] and one_day.slot_days() == [0] * 6


def test_earlier_days_are_filled_first_and_one_day_spreads_as_before():
    """With free tables on both days, are meetings put on the first day first? And without days (one-day fair)
    are they still spread over the least-used slots, as before?"""
    requests = [sched.Request(i, frozenset({f"firm{i}", f"expert{i}"})) for i in range(4)]
    by_day = sched.schedule(requests, 4, 2, day_of=[0, 0, 1, 1])
    assert sorted(s for s, _t in by_day.placed.values()) == [0, 0, 1, 1]
    one_day = sched.schedule(requests, 4, 2)
    assert sorted(s for s, _t in one_day.placed.values()) == [0, 1, 2, 3]


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
    """Are the firm's six meetings placed between 08:00 and 18:00 Beijing time — four on the first day (the
    17:00–19:00 slot reaches into the night), then the earliest daytime slots of the second day?"""
    result = fops.run_scheduler(three_day_fair, world["coordinator"])
    db.session.commit()
    assert result.count == 6
    starts = sorted(beijing(m.starts_at) for m in fops.meetings(three_day_fair))
    assert starts == ["2031-05-20 09:00", "2031-05-20 11:00", "2031-05-20 13:00", "2031-05-20 15:00",
                      "2031-05-21 09:00", "2031-05-21 11:00"]


def test_the_grid_of_a_multi_day_fair_shows_dates_and_skips_the_nights(app, world, three_day_fair):
    """Does the schedule grid of a fair over several days label every row with its date, and leave out the
    night rows, while a one-day fair's grid still shows the time alone?"""
    fops.run_scheduler(three_day_fair, world["coordinator"])
    db.session.commit()
    page = c(app, world["coordinator"]).get(f"/fairs/{three_day_fair.id}/schedule")
    assert page.status_code == 200
    assert "2031-05-21 09:00" in page.text and "2031-05-20 09:00" in page.text
    assert "2031-05-20 19:00" not in page.text and "2031-05-21 03:00" not in page.text


def test_a_one_day_fair_grid_keeps_the_time_alone(app, world, scheduled):
    """Is a one-day fair's grid still labelled 09:00, 09:30 … without a date?"""
    page = c(app, world["coordinator"]).get(f"/fairs/{scheduled.id}/schedule").text
    assert ">09:00<" in page and ">11:30<" in page and "2031-05-20 09:00<" not in page


# --- 3. the exact solver only when it can help, and briefly -----------------------------------------------------

def test_the_exact_solver_is_skipped_when_the_greedy_schedule_is_already_optimal(monkeypatch):
    """One firm asks five experts for a meeting but there are only three slots: is the greedy schedule (three
    meetings) recognised as optimal, so the exact solver is not run at all?"""
    def must_not_run(*args, **kwargs):
        raise AssertionError("the exact solver ran although the greedy schedule is optimal")

    monkeypatch.setattr(sched, "solve_ilp", must_not_run)
    requests = [sched.Request(i, frozenset({"firm", f"expert{i}"})) for i in range(5)]
    result = sched.schedule(requests, 3, 10)
    assert (result.count, result.upper_bound, result.method) == (3, 3, "greedy")
    busy = sched.schedule(requests, 4, 10, unavailable={"firm": {0}})  # busy elsewhere in one of four slots
    assert (busy.count, busy.upper_bound) == (3, 3)


def test_the_upper_bound_never_cuts_below_the_optimum():
    """When one left-out request settles the excess of both its people (a, b and c all meeting each other in one
    slot), and on random tiny instances, is the bound still at least the brute-force optimum?"""
    triangle = [sched.Request(i, frozenset(pair)) for i, pair in enumerate([("a", "b"), ("b", "c"), ("a", "c")])]
    result = sched.schedule(triangle, 1, 3)
    assert result.count == 1 and result.upper_bound >= 1
    rng = random.Random(5)
    for _ in range(60):
        n_slots, n_tables = rng.randint(1, 3), rng.randint(1, 3)
        people = [f"p{i}" for i in range(rng.randint(2, 5))]
        requests = [sched.Request(i, frozenset(rng.sample(people, 2))) for i in range(rng.randint(1, 6))]
        result = sched.schedule(requests, n_slots, n_tables)
        best = _brute_force(requests, n_slots, n_tables)
        assert result.upper_bound >= best and result.count == best, (requests, n_slots, n_tables)


def test_the_solver_stops_before_waiting_writers_give_up(world, fair, parties, monkeypatch):
    """The scheduler runs inside the request that holds SQLite's write lock; other writers wait 5 seconds
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


# --- 4. fair states against the clock -----------------------------------------------------------------------

def test_a_fair_is_marked_held_only_once_it_has_ended(app, world, fair):
    """Can a closed fair that has not happened yet be marked held? 409 with the reason, still closed; once its
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
    """Once the fair has started, are running the scheduler again and clearing the schedule refused (409, with
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
    """Can a coordinator lock or unlock a meeting of a fair that has been held? 409, the meeting unchanged."""
    meeting = fops.meetings(scheduled)[0]
    scheduled.status = "held"
    db.session.commit()
    resp = c(app, world["coordinator"]).post(f"/fairs/{scheduled.id}/meetings/{meeting.id}/lock",
                                             data={"locked": "1"})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.get(Meeting, meeting.id).locked is False


# --- 5. times on the pages and in the CSV ---------------------------------------------------------------------

def test_the_list_shows_the_end_date_of_a_multi_day_fair(app, world, fair):
    """Does the fair list show the end date of a fair over several days (and only the end time of a one-day
    fair)?"""
    coord = world["coordinator"]
    multi = fops.create_fair(coord, fair_data(title="三天的成渝对接会", ends_at=T0 + timedelta(days=2, hours=8)))
    fops.open_fair(multi, coord)
    db.session.commit()
    page = c(app, world["enterprise"]).get("/fairs").text
    assert "2031-05-20 09:00 – 2031-05-22 17:00" in page
    assert "2031-05-20 09:00 – 12:00" in page


def test_the_csv_lists_beijing_times(app, world, scheduled):
    """Does the CSV give the meeting at 09:00 Beijing time as 09:00 (as the pages do, not 01:00 UTC) and say
    so in its header?"""
    rows = c(app, world["coordinator"]).get(f"/fairs/{scheduled.id}/schedule.csv").data \
        .decode("utf-8-sig").strip().split("\r\n")
    assert "Beijing" in rows[0] or "北京" in rows[0]
    assert "UTC" not in rows[0]
    assert rows[1].startswith("2031-05-20 09:00,2031-05-20 09:30,")


# --- 6. the video link --------------------------------------------------------------------------------------

def test_the_video_link_is_for_registered_participants_and_managers(app, world, make):
    """Is a video fair's link shown to the firm with a registered need, the expert behind a registered
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
