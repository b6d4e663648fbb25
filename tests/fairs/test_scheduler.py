"""The fair scheduler as a pure function: no double booking, optimal on small instances, good on big ones."""
from __future__ import annotations

import itertools
import random
import time
from datetime import timedelta

from matchmaker.core.time import PROGRAMME_TZ
from matchmaker.fairs import scheduler as sched
from matchmaker.fairs.models import Fair
from matchmaker.fairs.scheduler import (
    REASON_GRID_FULL,
    REASON_PERSON_BUSY,
    REASON_SAME_PERSON,
    Fixed,
    Request,
    check,
    greedy,
    schedule,
)
from tests.helpers import T0


def _instance(rng, n_requests, n_firms, n_experts):
    pairs = set()
    while len(pairs) < n_requests:
        pairs.add((rng.randrange(n_firms), rng.randrange(n_experts)))
    return [Request(i, frozenset({("firm", a), ("expert", b)})) for i, (a, b) in enumerate(sorted(pairs))]


def _brute_force(requests, n_slots, n_tables) -> int:
    """The optimum by trying every assignment (slot or none) of every request: tiny instances only."""
    best = 0
    for choice in itertools.product(range(-1, n_slots), repeat=len(requests)):
        used, people, ok = {}, set(), True
        for r, s in zip(requests, choice, strict=True):
            if s < 0:
                continue
            used[s] = used.get(s, 0) + 1
            if used[s] > n_tables or any((p, s) in people for p in r.people):
                ok = False
                break
            people |= {(p, s) for p in r.people}
        if ok:
            best = max(best, sum(1 for s in choice if s >= 0))
    return best


def test_three_hundred_requests_are_scheduled_without_double_booking():
    """With 300 accepted requests among 60 firms and 80 experts on 12 slots × 20 tables, is the schedule free of
    double booking (person, slot, table), made only of the given requests, full up to the grid's capacity, and
    at least as large as a plain greedy baseline — in well under 20 seconds?"""
    rng = random.Random(20261123)
    requests = _instance(rng, 300, 60, 80)
    started = time.monotonic()
    result = schedule(requests, 12, 20)
    assert time.monotonic() - started < 15
    assert check(requests, result.placed, 12, 20) == []
    assert set(result.placed) <= {r.id for r in requests}
    assert set(result.placed).isdisjoint(result.unscheduled)
    assert len(result.placed) + len(result.unscheduled) == 300
    baseline = greedy(requests, 12, {s: 20 for s in range(12)}, {}, repair=False)
    assert result.count >= len(baseline)
    assert result.count == 240  # the grid holds 240 meetings and all of them are used
    assert set(result.unscheduled.values()) == {REASON_GRID_FULL}


def test_crowded_people_are_scheduled_as_well_as_the_exact_solver_allows():
    """When a few firms have more requests than there are slots, does the scheduler still beat (or equal) the
    greedy baseline, keep everyone single-booked and explain every left-out request by a busy participant?"""
    rng = random.Random(7)
    requests = _instance(rng, 200, 15, 60)  # ~13 requests per firm for 10 slots
    result = schedule(requests, 10, 30, time_limit=8)
    assert check(requests, result.placed, 10, 30) == []
    baseline = greedy(requests, 10, {s: 30 for s in range(10)}, {}, repair=False)
    assert result.count >= len(baseline)
    firms = {}
    for r in requests:
        firm = next(p for p in r.people if p[0] == "firm")
        firms[firm] = firms.get(firm, 0) + 1
    assert result.count <= sum(min(10, n) for n in firms.values())
    assert set(result.unscheduled.values()) <= {REASON_PERSON_BUSY}


def test_random_small_instances_reach_the_brute_force_optimum():
    """On 60 seeded random tiny instances (people shared across sides too), does the scheduler always place
    exactly as many meetings as the brute-force optimum, with no double booking?"""
    rng = random.Random(42)
    for _ in range(60):
        n_slots, n_tables = rng.randint(1, 3), rng.randint(1, 3)
        people = [f"p{i}" for i in range(rng.randint(2, 5))]
        requests = []
        for i in range(rng.randint(1, 6)):
            a, b = rng.sample(people, 2)
            requests.append(Request(i, frozenset({a, b})))
        result = schedule(requests, n_slots, n_tables)
        assert check(requests, result.placed, n_slots, n_tables) == []
        assert result.count == _brute_force(requests, n_slots, n_tables), (requests, n_slots, n_tables)


def test_locked_meetings_keep_their_cell_and_block_their_people():
    """Does a locked meeting keep its slot and table, and are its people and table not booked again there?"""
    fixed = [Fixed("locked", frozenset({"a", "b"}), 0, 1)]
    requests = [Request(1, frozenset({"a", "c"})), Request(2, frozenset({"d", "e"}))]
    result = schedule(requests, 2, 1, fixed=fixed)
    assert check(requests, result.placed, 2, 1, fixed) == []
    assert result.placed[1] == (1, 1)  # "a" is busy in slot 0, and the only table there is taken
    assert 2 in result.unscheduled


def test_the_checker_catches_every_kind_of_double_booking():
    """Does ``check`` report a shared table, a person in two meetings of one slot and a cell off the grid?"""
    requests = [Request(1, frozenset({"a", "b"})), Request(2, frozenset({"a", "c"})),
                Request(3, frozenset({"d", "e"}))]
    assert check(requests, {1: (0, 1), 3: (0, 1)}, 2, 2)        # same table
    assert check(requests, {1: (0, 1), 2: (0, 2)}, 2, 2)        # "a" twice in slot 0
    assert check(requests, {1: (5, 1)}, 2, 2)                   # no slot 5
    assert check(requests, {1: (0, 1), 2: (1, 1), 3: (0, 2)}, 2, 2) == []


def test_degenerate_inputs_are_reported_not_crashed():
    """A request with one person, or a fair without slots: reported with a reason, nothing placed."""
    assert schedule([Request(1, frozenset({"a"}))], 3, 3).unscheduled == {1: REASON_SAME_PERSON}
    assert schedule([Request(1, frozenset({"a", "b"}))], 0, 3).unscheduled == {1: "no_slots"}
    assert schedule([], 3, 3).count == 0


# -- review fixes (2026-12-02): people busy at another fair, nights, the exact solver only when it helps -----


def test_the_check_reports_a_person_busy_elsewhere_and_a_closed_slot():
    """Regression (2026-12-02): Does ``check`` report a meeting of someone busy elsewhere in that slot, and one in a closed (night) slot,
    while the same meeting in a free daytime slot passes?"""
    requests = [sched.Request(1, frozenset({"a", "b"}))]
    assert sched.check(requests, {1: (0, 1)}, 2, 1, unavailable={"a": {0}})
    assert sched.check(requests, {1: (0, 1)}, 2, 1, closed=[0])
    assert sched.check(requests, {1: (1, 1)}, 2, 1, closed=[0], unavailable={"a": {0}}) == []
    result = sched.schedule(requests, 2, 1, unavailable={"b": {0}})
    assert result.placed == {1: (1, 1)}


def test_only_the_nights_of_a_multi_day_fair_are_closed():
    """Regression (2026-12-02): Are the slots of a fair over three days open only from 08:00 to 18:00 Beijing time and counted by day,
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
    """Regression (2026-12-02): With free tables on both days, are meetings put on the first day first? And without days (one-day fair)
    are they still spread over the least-used slots, as before?"""
    requests = [sched.Request(i, frozenset({f"firm{i}", f"expert{i}"})) for i in range(4)]
    by_day = sched.schedule(requests, 4, 2, day_of=[0, 0, 1, 1])
    assert sorted(s for s, _t in by_day.placed.values()) == [0, 0, 1, 1]
    one_day = sched.schedule(requests, 4, 2)
    assert sorted(s for s, _t in one_day.placed.values()) == [0, 1, 2, 3]


def test_the_exact_solver_is_skipped_when_the_greedy_schedule_is_already_optimal(monkeypatch):
    """Regression (2026-12-02): One firm asks five experts for a meeting but there are only three slots: is the greedy schedule (three
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
    """Regression (2026-12-02): When one left-out request settles the excess of both its people (a, b and c all meeting each other in one
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
