"""The fair scheduler as a pure function: no double booking, optimal on small instances, good on big ones."""
from __future__ import annotations

import itertools
import random
import time

from matchmaker.fairs.scheduler import (REASON_GRID_FULL, REASON_PERSON_BUSY, REASON_SAME_PERSON, Fixed,
                                        Request, check, greedy, schedule)


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
        for r, s in zip(requests, choice):
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
