"""1:1 meeting scheduler for docking fairs: a pure function on plain data.

Input: accepted meeting requests, each with the set of people who must attend (the firm's contact and the
expert); a grid of ``n_slots`` time slots × ``n_tables`` tables; optionally meetings already fixed (locked)
in the grid, slots that are closed (outside the session hours), the slots in which a person is busy elsewhere
(a meeting at another fair) and the day each slot belongs to. Output: an assignment request → (slot, table)
with

* at most one meeting per (slot, table), none in a closed slot,
* no person in two meetings of the same slot, nor in a slot where they are busy elsewhere,
* as many meetings as possible, on the earliest days possible,

and, for every request left out, the reason.

Method: a greedy pass (most-constrained request first; earliest day, then least-loaded slot of that day)
followed by a repair pass (move one blocking meeting to another slot to free room). When the greedy result
does not reach the upper bound (requests, free cells, what each person can attend), an exact integer
programme (``scipy.optimize.milp``, HiGHS) is solved with a time limit and the better of the two is kept.
Tables inside a slot are interchangeable, so the integer programme only chooses slots; tables are numbered
afterwards.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

#: reasons for an unscheduled request (stable codes; the app translates them)
REASON_PERSON_BUSY = "participant_busy"      # a participant has no free slot left in common
REASON_GRID_FULL = "grid_full"                # every slot × table is taken
REASON_NO_SLOTS = "no_slots"                  # the fair has no slot at all
REASON_SAME_PERSON = "same_person"            # both sides are the same person


@dataclass(frozen=True)
class Request:
    id: Hashable
    people: frozenset


@dataclass(frozen=True)
class Fixed:
    """A meeting kept as it is (locked): it occupies its slot, its table and its people."""
    id: Hashable
    people: frozenset
    slot: int
    table: int


@dataclass
class Schedule:
    #: request id → (slot index from 0, table number from 1)
    placed: dict = field(default_factory=dict)
    #: request id → reason code
    unscheduled: dict = field(default_factory=dict)
    method: str = "greedy"
    upper_bound: int = 0

    @property
    def count(self) -> int:
        return len(self.placed)


def schedule(requests: Iterable[Request], n_slots: int, n_tables: int, fixed: Iterable[Fixed] = (),
             exact: bool = True, time_limit: float = 10.0, closed: Iterable[int] = (),
             unavailable: dict | None = None, day_of: Sequence[int] | None = None) -> Schedule:
    """Assign ``requests`` to (slot, table); maximise the number placed. See the module docstring.

    ``closed``: slots where no meeting may be placed; ``unavailable``: person → slots in which they are busy
    elsewhere; ``day_of``: slot → day number (earlier days are filled first; by default all one day)."""
    requests = list(requests)
    fixed = list(fixed)
    closed = set(closed)
    day_of = list(day_of) if day_of is not None else [0] * max(0, n_slots)
    seen = set()
    for r in requests:
        if r.id in seen:
            raise ValueError(f"duplicate request id {r.id!r}")
        seen.add(r.id)
    result = Schedule()
    valid = []
    for r in requests:
        if len(r.people) < 2:
            result.unscheduled[r.id] = REASON_SAME_PERSON
        elif n_slots <= 0 or n_tables <= 0 or all(s in closed for s in range(n_slots)):
            result.unscheduled[r.id] = REASON_NO_SLOTS
        else:
            valid.append(r)
    if not valid:
        return result

    # what the locked meetings take
    tables_used = defaultdict(set)   # slot → tables taken
    busy = defaultdict(set)          # person → slots taken (locked meetings here, meetings elsewhere)
    for f in fixed:
        tables_used[f.slot].add(f.table)
        for p in f.people:
            busy[p].add(f.slot)
    for p, slots in (unavailable or {}).items():
        busy[p].update(slots)
    free_tables = {s: 0 if s in closed else n_tables - len(tables_used[s]) for s in range(n_slots)}

    result.upper_bound = _upper_bound(valid, n_slots, free_tables, busy)
    slots_of = greedy(valid, n_slots, free_tables, busy, day_of=day_of)
    result.method = "greedy"
    if exact and len(slots_of) < result.upper_bound:
        better = solve_ilp(valid, n_slots, free_tables, busy, time_limit=time_limit, day_of=day_of)
        if better is not None and len(better) > len(slots_of):
            slots_of, result.method = better, "ilp"
        elif better is not None:
            result.method = "greedy+ilp"

    # number the tables inside each slot, skipping the locked ones
    by_slot = defaultdict(list)
    for rid, s in slots_of.items():
        by_slot[s].append(rid)
    order = {r.id: i for i, r in enumerate(requests)}
    for s, rids in by_slot.items():
        free = (t for t in range(1, n_tables + 1) if t not in tables_used[s])
        for rid in sorted(rids, key=order.__getitem__):
            result.placed[rid] = (s, next(free))

    # why the others were left out
    occupied = {s: len(tables_used[s]) + len(by_slot.get(s, ())) for s in range(n_slots)}
    person_slots = defaultdict(set, {p: set(v) for p, v in busy.items()})
    for r in valid:
        if r.id in slots_of:
            for p in r.people:
                person_slots[p].add(slots_of[r.id])
    for r in valid:
        if r.id in slots_of:
            continue
        open_slots = [s for s in range(n_slots) if s not in closed and occupied[s] < n_tables]
        if not open_slots:
            result.unscheduled[r.id] = REASON_GRID_FULL
        else:
            result.unscheduled[r.id] = REASON_PERSON_BUSY
    return result


def _upper_bound(requests, n_slots, free_tables, busy) -> int:
    """A simple bound: no more than the requests, the free cells, or what each person can still attend.

    A person with more requests than slots they can still use (a free table, not busy) leaves out at least the
    excess. One left-out request can settle the excess of every over-booked person in it, so the requests lost
    are at least the largest excess and at least the total excess divided by the most over-booked people any
    single request has (1 when, as usual, only one side is crowded: then every excess counts in full)."""
    bound = min(len(requests), sum(max(0, v) for v in free_tables.values()))
    open_slots = [s for s in range(n_slots) if free_tables[s] > 0]
    load = defaultdict(int)
    for r in requests:
        for p in r.people:
            load[p] += 1
    excess = {}
    for p, n in load.items():
        usable = sum(1 for s in open_slots if s not in busy.get(p, ()))
        if n > usable:
            excess[p] = n - usable
    if excess:
        per_request = max(sum(1 for p in r.people if p in excess) for r in requests)
        total = sum(excess.values())
        lost = max(max(excess.values()), -(-total // per_request))
        bound = min(bound, len(requests) - lost)
    return bound


def greedy(requests, n_slots, free_tables, busy, repair: bool = True, day_of: Sequence[int] | None = None) -> dict:
    """Most-constrained first (people with the most requests), the least-loaded feasible slot of the earliest
    day; then repair."""
    day = list(day_of) if day_of is not None else [0] * n_slots
    load = defaultdict(int)
    for r in requests:
        for p in r.people:
            load[p] += 1
    ordered = sorted(requests, key=lambda r: (-max(load[p] + len(busy.get(p, ())) for p in r.people),
                                              -sum(load[p] for p in r.people)))
    cap = dict(free_tables)
    taken = defaultdict(set, {p: set(v) for p, v in busy.items()})
    placed: dict = {}
    members: dict = defaultdict(list)  # slot → requests placed there
    left = []

    def fits(r, s):
        return cap[s] > 0 and all(s not in taken[p] for p in r.people)

    def put(r, s):
        placed[r.id] = s
        cap[s] -= 1
        members[s].append(r)
        for p in r.people:
            taken[p].add(s)

    def take_out(r, s):
        del placed[r.id]
        cap[s] += 1
        members[s].remove(r)
        for p in r.people:
            taken[p].discard(s)

    for r in ordered:
        options = [s for s in range(n_slots) if fits(r, s)]
        if options:
            put(r, min(options, key=lambda s: (day[s], -cap[s], s)))
        else:
            left.append(r)

    if repair:
        # one-step repair: for a left-out request, find a slot where only one placed meeting blocks it
        # (by a shared person or by the last table) and that meeting fits elsewhere
        for r in left:
            done = False
            for s in range(n_slots):
                blockers = [m for m in members[s] if m.people & r.people]
                if any(s in busy.get(p, ()) for p in r.people):
                    continue
                if len(blockers) > 1:
                    continue
                candidates = blockers if blockers else (members[s] if cap[s] == 0 else [])
                if not blockers and cap[s] > 0:
                    put(r, s)
                    done = True
                    break
                for m in list(candidates):
                    take_out(m, s)
                    if fits(r, s):
                        put(r, s)
                        alt = next((t for t in range(n_slots) if t != s and fits(m, t)), None)
                        if alt is not None:
                            put(m, alt)
                            done = True
                            break
                        take_out(r, s)
                    put(m, s)
                if done:
                    break
    return placed


def solve_ilp(requests, n_slots, free_tables, busy, time_limit: float = 10.0,
              day_of: Sequence[int] | None = None) -> dict | None:
    """Exact maximum via an integer programme; None if scipy is missing or no solution was found in time.
    Among schedules of the same size, earlier days are preferred (a weight too small to cost one meeting)."""
    try:
        import numpy as np
        from scipy.optimize import Bounds, LinearConstraint, milp
        from scipy.sparse import lil_matrix
    except ImportError:  # pragma: no cover
        return None
    # variables x[r, s] only where slot s is possible for r (no participant already busy there)
    var = []
    for i, r in enumerate(requests):
        for s in range(n_slots):
            if free_tables[s] > 0 and not any(s in busy.get(p, ()) for p in r.people):
                var.append((i, s))
    if not var:
        return {}
    people = sorted({p for r in requests for p in r.people}, key=repr)
    pidx = {p: k for k, p in enumerate(people)}
    n_rows = len(requests) + n_slots + len(people) * n_slots
    A = lil_matrix((n_rows, len(var)))
    for j, (i, s) in enumerate(var):
        A[i, j] = 1                                              # each request at most once
        A[len(requests) + s, j] = 1                              # tables per slot
        for p in requests[i].people:
            A[len(requests) + n_slots + pidx[p] * n_slots + s, j] = 1  # a person once per slot
    ub = np.concatenate([np.ones(len(requests)), np.array([max(0, free_tables[s]) for s in range(n_slots)]),
                         np.ones(len(people) * n_slots)])
    day = list(day_of) if day_of is not None else [0] * n_slots
    last_day = max([day[s] for _i, s in var] + [0])
    eps = 1.0 / ((last_day + 1) * (len(requests) + 1))  # all the day weights together stay below one meeting
    cost = np.array([-1.0 + eps * day[s] for _i, s in var])
    res = milp(c=cost, constraints=LinearConstraint(A.tocsr(), -np.inf, ub),
               integrality=np.ones(len(var)), bounds=Bounds(0, 1),
               options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return None
    return {requests[i].id: s for j, (i, s) in enumerate(var) if res.x[j] > 0.5}


def check(requests: Iterable[Request], placed: dict, n_slots: int, n_tables: int,
          fixed: Iterable[Fixed] = (), closed: Iterable[int] = (), unavailable: dict | None = None) -> list[str]:
    """Every rule a schedule must satisfy; returns the violations (empty when valid). Used by tests and
    as a last guard before anything is written. Locked meetings are kept as they are: only the placed ones
    are checked against ``closed`` slots and ``unavailable`` people (person → slots busy elsewhere)."""
    problems = []
    closed, unavailable = set(closed), unavailable or {}
    people_of = {r.id: r.people for r in requests}
    cells, person_slot = {}, {}
    items = [(f.id, f.people, f.slot, f.table) for f in fixed]
    for rid, (s, t) in placed.items():
        if rid not in people_of:
            problems.append(f"{rid!r} is not a request")
            continue
        items.append((rid, people_of[rid], s, t))
        if s in closed:
            problems.append(f"{rid!r} in slot {s}, outside the session hours")
        for p in sorted(people_of[rid], key=repr):
            if s in unavailable.get(p, ()):
                problems.append(f"{p!r} is in {rid!r} in slot {s} but busy elsewhere then")
    for rid, people, s, t in items:
        if not (0 <= s < n_slots and 1 <= t <= n_tables):
            problems.append(f"{rid!r} outside the grid at ({s}, {t})")
        if (s, t) in cells:
            problems.append(f"{rid!r} and {cells[(s, t)]!r} share slot {s} table {t}")
        cells[(s, t)] = rid
        for p in people:
            if (p, s) in person_slot:
                problems.append(f"{p!r} is in {rid!r} and {person_slot[(p, s)]!r} in slot {s}")
            person_slot[(p, s)] = rid
    return problems
