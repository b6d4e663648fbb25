"""Global assignment of engine candidates to needs, as a min-cost flow (like OpenReview's reviewer matcher).

Network:   source ─(slots)→ need ─(1, −score)→ candidate ─(1)→ resource ─(capacity)→ sink
where a resource is the expert behind the capability (capacity = ``max_active_pairings`` minus their active
pairings) or, for capabilities without an expert, the capability itself (no capacity limit beyond one per need).
Region quota (optional): the edge need → candidate for cross-region candidates goes through a "quota" node whose
first unit carries a bonus larger than every score together, so whenever a cross-region candidate can be given to
a need without reducing the number of proposals, one is. The objective is therefore lexicographic: the most
proposals, then the most needs with a cross-region candidate, then the highest total score.

Candidates that can never be proposed (same organization, one person on both sides, declared conflict, already
paired, no capacity left)
are excluded before solving; every other candidate that loses gets the reason it lost.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..core.scope import coordinator_scope_of
from ..extensions import db

SCALE = 1000

REASONS = {
    "assigned": _l("To be proposed"),  # nothing is proposed until the coordinator confirms
    "same_org": _l("Same organization as the need"),
    "same_person": _l("The same person is on both sides"),
    "conflict": _l("Declared conflict of interest"),
    "existing": _l("Already paired with this need"),
    "capacity_full": _l("Expert capacity full (active pairings at the maximum)"),
    "capacity_used": _l("Expert capacity used by better matches for other needs"),
    "lost": _l("Lost to better candidates for this need"),
    "quota": _l("Replaced by a cross-region candidate (region quota)"),
}


@dataclass
class Candidate:
    need_id: int
    capability_id: int
    score: float
    #: the capacity pool: ("expert", id) or ("capability", id)
    resource: tuple
    cross_region: bool = False
    #: set before solving when the candidate can never be proposed
    excluded: str | None = None
    #: result: "assigned" or the reason it was excluded
    status: str | None = None
    need: object = None
    capability: object = None
    #: the engine's confidence band ("strong" or "possible": weak results never become candidates); None when
    #: the floor is switched off
    band: str | None = None

    @property
    def reason(self):
        return REASONS.get(self.status or "", self.status)

    @property
    def preselected(self) -> bool:
        """Ticked on the confirmation page: assigned and a strong match ("possible" ones are listed unticked;
        without a band — the floor switched off — every assigned one)."""
        return self.status == "assigned" and self.band in ("strong", None)


@dataclass
class Proposal:
    candidates: list[Candidate] = field(default_factory=list)
    quota: bool = False

    def assigned(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "assigned"]

    def preselected(self) -> list[Candidate]:
        return [c for c in self.candidates if c.preselected]

    def by_need(self) -> dict[int, list[Candidate]]:
        out = defaultdict(list)
        for c in sorted(self.candidates, key=lambda c: (c.status != "assigned", -c.score)):
            out[c.need_id].append(c)
        return dict(out)


def solve(candidates: list[Candidate], slots: int | dict, capacities: dict, quota: bool = False) -> list[Candidate]:
    """Assign candidates (in place: ``status``) and return them.

    ``slots``: proposals per need (int or {need_id: n}); ``capacities``: {resource: remaining} (missing → unlimited).
    """
    eligible = [c for c in candidates if c.excluded is None]
    for c in candidates:
        c.status = c.excluded
    if not eligible:
        return candidates
    costs = {id(c): -int(round(c.score * SCALE)) for c in eligible}
    big = sum(abs(v) for v in costs.values()) + 1
    g = nx.DiGraph()
    need_ids = sorted({c.need_id for c in eligible})
    for n in need_ids:
        s = slots if isinstance(slots, int) else slots.get(n, 0)
        g.add_edge("s", ("need", n), capacity=max(0, int(s)), weight=0)
        if quota:
            # first cross-region unit earns the bonus; the rest go through at no extra gain
            g.add_edge(("need", n), ("q", n), capacity=1, weight=-big)
            g.add_edge(("q", n), ("x", n), capacity=1, weight=0)
            g.add_edge(("need", n), ("x", n), capacity=max(0, int(s)), weight=0)
    for i, c in enumerate(eligible):
        node = ("c", i)
        src = ("x", c.need_id) if quota and c.cross_region else ("need", c.need_id)
        g.add_edge(src, node, capacity=1, weight=costs[id(c)])
        g.add_edge(node, ("r",) + tuple(c.resource), capacity=1, weight=0)
    for res in {tuple(c.resource) for c in eligible}:
        cap = capacities.get(res)
        g.add_edge(("r",) + res, "t", capacity=len(need_ids) if cap is None else max(0, int(cap)), weight=0)
    flow = nx.max_flow_min_cost(g, "s", "t")
    used = defaultdict(int)
    per_need = defaultdict(list)
    for i, c in enumerate(eligible):
        src = ("x", c.need_id) if quota and c.cross_region else ("need", c.need_id)
        if flow[src][("c", i)] > 0:
            c.status = "assigned"
            used[tuple(c.resource)] += 1
            per_need[c.need_id].append(c)
    for c in eligible:
        if c.status == "assigned":
            continue
        res = tuple(c.resource)
        cap = capacities.get(res)
        chosen = per_need[c.need_id]
        would_fit = len(chosen) < _slots(slots, c.need_id) or any(a.score < c.score for a in chosen)
        if cap is not None and used[res] >= cap and would_fit:
            c.status = "capacity_used"
        elif quota and not c.cross_region and any(a.cross_region and a.score < c.score for a in chosen):
            c.status = "quota"
        else:
            c.status = "lost"
    return candidates


def _slots(slots, need_id) -> int:
    return slots if isinstance(slots, int) else slots.get(need_id, 0)


# -- building candidates from the database and the engine -----------------------------------------

def remaining_capacity(expert_ids) -> dict:
    from ..accounts.models import ExpertProfile
    from .models import ACTIVE_STATES, Pairing
    expert_ids = list({e for e in expert_ids if e is not None})
    if not expert_ids:
        return {}
    active = dict(db.session.execute(
        select(Pairing.expert_id, func.count(Pairing.id)).where(
            Pairing.expert_id.in_(expert_ids), Pairing.state.in_([s.value for s in ACTIVE_STATES]))
        .group_by(Pairing.expert_id)).all())
    caps = dict(db.session.execute(select(ExpertProfile.id, ExpertProfile.max_active_pairings)
                                   .where(ExpertProfile.id.in_(expert_ids))).all())
    return {("expert", e): max(0, caps.get(e, 0) - active.get(e, 0)) for e in expert_ids}


def paired_capability_ids(need) -> dict[int, int]:
    """Capabilities that already have a pairing with ``need`` (in any state: a pair is proposed once), each
    with that pairing's id."""
    from .models import Pairing
    return dict(db.session.execute(select(Pairing.capability_id, Pairing.id).where(
        Pairing.need_id == need.id, Pairing.capability_id.is_not(None))).all())


def experts_at_capacity(expert_ids) -> set[int]:
    """The experts among ``expert_ids`` whose open pairings have reached the maximum they set."""
    return {e for (_, e), left in remaining_capacity(expert_ids).items() if left <= 0}


def build_candidates(pairs) -> tuple[list[Candidate], dict]:
    """``pairs``: iterable of (need, capability, score). Applies the hard exclusions; returns candidates and
    the remaining capacity of every expert involved."""
    from ..accounts.models import Membership
    from .models import ConflictOfInterest, Pairing
    pairs = list(pairs)
    capacities = remaining_capacity(cap.expert_id for _, cap, _ in pairs)
    need_ids = {n.id for n, _, _ in pairs}
    existing = set(db.session.execute(select(Pairing.need_id, Pairing.capability_id)
                                      .where(Pairing.need_id.in_(need_ids))).all()) if need_ids else set()
    conflicts = set(db.session.execute(select(ConflictOfInterest.expert_id, ConflictOfInterest.organization_id)
                                       ).all())
    org_ids = {n.organization_id for n, _, _ in pairs} | {c.organization_id for _, c, _ in pairs}
    org_ids.discard(None)
    members = defaultdict(set)
    if org_ids:
        for user_id, org_id in db.session.execute(select(Membership.user_id, Membership.organization_id)
                                                  .where(Membership.organization_id.in_(org_ids))):
            members[org_id].add(user_id)
    out = []
    for need, cap, score in pairs:
        resource = ("expert", cap.expert_id) if cap.expert_id is not None else ("capability", cap.id)
        c = Candidate(need_id=need.id, capability_id=cap.id, score=float(score), resource=resource,
                      cross_region=bool(cap.hub_city and need.hub_city and cap.hub_city != need.hub_city),
                      need=need, capability=cap)
        cap_orgs = {cap.organization_id, getattr(cap.expert, "affiliation_id", None)} - {None}
        if need.organization_id is not None and need.organization_id in cap_orgs:
            c.excluded = "same_org"
        elif _same_person(need, cap, members):
            c.excluded = "same_person"
        elif cap.expert_id is not None and (cap.expert_id, need.organization_id) in conflicts:
            c.excluded = "conflict"
        elif (need.id, cap.id) in existing:
            c.excluded = "existing"
        elif resource in capacities and capacities[resource] <= 0:
            c.excluded = "capacity_full"
        out.append(c)
    return out, capacities


def _same_person(need, cap, members) -> bool:
    """Someone could answer for both sides (as ``operations.check_pairable`` refuses)."""
    need_side = {need.created_by_id} | members.get(need.organization_id, set())
    cap_side = {cap.created_by_id, getattr(cap.expert, "user_id", None)} | members.get(cap.organization_id, set())
    return bool((need_side & cap_side) - {None})


def candidate_needs(coordinator, hub_city: str | None = None, industry: str | None = None, limit: int = 30):
    """Published needs in the coordinator's scope, oldest first."""
    from ..core.enums import ListingStatus
    from ..listings.models import Need
    stmt = select(Need).where(Need.status == ListingStatus.PUBLISHED, Need.deleted_at.is_(None),
                              coordinator_scope_of(coordinator).where(Need.hub_city))
    if hub_city:
        stmt = stmt.where(Need.hub_city == hub_city)
    if industry:
        stmt = stmt.where(Need.industry == industry)
    return list(db.session.scalars(stmt.order_by(Need.published_at, Need.id).limit(limit)))


def propose_assignment(needs, k: int = 8, slots: int = 3, quota: bool = False) -> Proposal:
    """Ask the engine for the top-k capabilities of each need and solve the global assignment. Only results
    above the confidence floor are candidates (a need is not padded to ``slots``, the region quota brings in no
    weak one); only strong ones are pre-ticked (``Candidate.preselected``)."""
    from ..suggestions.queries import capabilities_for_need
    pairs, bands = [], {}
    for need in needs:
        for s in capabilities_for_need(need, k=k, evidence=False):
            pairs.append((need, s.listing, s.score))
            bands[(need.id, s.listing.id)] = s.band
    candidates, capacities = build_candidates(pairs)
    from ..suggestions.queries import floor_on
    for c in candidates:
        # without the floor (a test's tiny index) every assigned candidate is pre-ticked, as before it
        c.band = bands[(c.need_id, c.capability_id)] if floor_on() else None
    solve(candidates, slots, capacities, quota=quota)
    return Proposal(candidates=candidates, quota=quota)
