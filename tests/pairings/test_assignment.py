"""Global assignment: capacity, conflicts, region quota and optimality of the min-cost flow."""
from __future__ import annotations

import itertools
import random

import pytest

from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.pairings import operations as ops
from matchmaker.pairings.assignment import REASONS, Candidate, build_candidates, solve
from matchmaker.pairings.models import ConflictOfInterest


def C(need, cap, score, expert=None, cross=False):
    return Candidate(need_id=need, capability_id=cap, score=score,
                     resource=("expert", expert) if expert else ("capability", cap), cross_region=cross)


@pytest.mark.nodb
def test_capacity_respected_and_reason_given():
    """Does an expert with one free slot get only their best need, and does the other need see why?"""
    cands = [C(1, 10, 2.0, expert=7), C(2, 11, 1.5, expert=7), C(2, 12, 0.5, expert=8)]
    solve(cands, slots=1, capacities={("expert", 7): 1, ("expert", 8): 5})
    assert [c.status for c in cands] == ["assigned", "capacity_used", "assigned"]
    assert cands[1].reason == REASONS["capacity_used"]


@pytest.mark.nodb
def test_slots_per_need_and_losers():
    """Are at most `slots` candidates proposed per need, the best ones, the rest marked as lost?"""
    cands = [C(1, i, float(i)) for i in range(1, 6)]
    solve(cands, slots=3, capacities={})
    assert {c.capability_id for c in cands if c.status == "assigned"} == {3, 4, 5}
    assert {c.status for c in cands if c.capability_id < 3} == {"lost"}


@pytest.mark.nodb
def test_quota_gives_cross_region_when_feasible():
    """With the quota on, does each need get a cross-region candidate when one exists, even if weaker,
    and does the displaced local candidate say so?"""
    cands = [C(1, 1, 3.0), C(1, 2, 2.5), C(1, 3, 0.4, cross=True), C(2, 4, 1.0)]
    solve(cands, slots=2, capacities={}, quota=True)
    status = {c.capability_id: c.status for c in cands}
    assert status == {1: "assigned", 2: "quota", 3: "assigned", 4: "assigned"}
    solve(cands, slots=2, capacities={}, quota=False)
    assert {c.capability_id for c in cands if c.status == "assigned"} == {1, 2, 4}


def _brute(cands, slots, capacities, quota):
    best = None
    for mask in itertools.product([0, 1], repeat=len(cands)):
        chosen = [c for c, m in zip(cands, mask, strict=True) if m]
        per_need, per_res = {}, {}
        for c in chosen:
            per_need[c.need_id] = per_need.get(c.need_id, 0) + 1
            per_res[c.resource] = per_res.get(c.resource, 0) + 1
        if any(v > slots for v in per_need.values()):
            continue
        if any(v > capacities.get(r, 99) for r, v in per_res.items()):
            continue
        crossed = len({c.need_id for c in chosen if c.cross_region}) if quota else 0
        key = (len(chosen), crossed, sum(round(c.score * 1000) for c in chosen))
        best = key if best is None or key > best else best
    return best


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.nodb
def test_optimal_against_brute_force(seed):
    """On small random instances, does the flow reach the brute-force optimum (most proposals, then most needs
    with a cross-region candidate, then highest total score)?"""
    rng = random.Random(seed)
    cands = []
    for n in range(1, 4):
        for cap in rng.sample(range(1, 7), 3):
            cands.append(C(n, cap, round(rng.uniform(-1, 3), 3), expert=100 + cap % 3, cross=rng.random() < 0.3))
    capacities = {("expert", 100 + i): rng.randint(0, 2) for i in range(3)}
    quota = seed % 2 == 0
    solve(cands, slots=2, capacities=capacities, quota=quota)
    chosen = [c for c in cands if c.status == "assigned"]
    got = (len(chosen), len({c.need_id for c in chosen if c.cross_region}) if quota else 0,
           sum(round(c.score * 1000) for c in chosen))
    assert got == _brute(cands, 2, capacities, quota)


def test_build_candidates_excludes_with_reasons(make, world):
    """Are same-organization, declared-conflict, already-paired and full-capacity candidates excluded, each
    with its reason?"""
    need = make.need(world["enterprise"])
    expert = world["expert"]
    cap = make.capability(expert)
    own = make.capability(world["enterprise"])
    other_expert = make.user(Role.EXPERT, org=make.org(kind="university"))
    busy = make.capability(other_expert)
    other_expert.expert_profile.max_active_pairings = 0
    third = make.user(Role.EXPERT, org=make.org(kind="university"))
    conflicted = make.capability(third)
    db.session.add(ConflictOfInterest(expert_id=third.expert_profile.id, organization_id=world["firm"].id))
    paired = make.capability(make.user(Role.EXPERT, org=make.org(kind="institute")))
    ops.propose_pairing(need, paired, by=make.user(Role.COORDINATOR))
    db.session.commit()
    cands, caps = build_candidates([(need, cap, 1.0), (need, own, 2.0), (need, busy, 1.5),
                                    (need, conflicted, 1.2), (need, paired, 1.1)])
    assert [c.excluded for c in cands] == [None, "same_org", "capacity_full", "conflict", "existing"]
    solve(cands, slots=3, capacities=caps)
    assert cands[0].status == "assigned" and all(str(c.reason) for c in cands)


@pytest.mark.slow
def test_assign_page_and_engine_suggestions_with_real_model(app, tmp_path, make, world):
    """With the real engine: does the bulk page show a proposal with reasons that the coordinator can confirm,
    and does suggest_from_engine create 'suggested' pairings with score and evidence, skipping full experts?"""
    import re

    from matchmaker import matching_service as ms
    from matchmaker.pairings.models import Pairing
    from sqlalchemy import select
    from tests.helpers import login
    saved = {k: app.config[k] for k in ("MATCHMAKER_MATCHING", "MATCHMAKER_INDEX_DIR", "MATCHMAKER_MATCH_FLOOR")}
    # a handful of listings: the confidence floor stays off (tests/pairings/test_assignment_floor.py has it on)
    app.config.update(MATCHMAKER_MATCHING=True, MATCHMAKER_INDEX_DIR=str(tmp_path / "embeddings"),
                      MATCHMAKER_MATCH_FLOOR=False)
    app.extensions[ms.EXTENSION_KEY] = None
    try:
        need = make.need(world["enterprise"])
        for i in range(3):
            make.capability(world["expert"], title=f"低温电解液方案{i}")
        world["expert"].expert_profile.max_active_pairings = 1
        other = make.capability(make.user(Role.EXPERT, org=make.org(kind="university")), title="负极包覆低温快充")
        db.session.commit()
        coord = login(app.test_client(), world["coordinator"])
        html = coord.get("/coordinate/assign?run=1&slots=3").get_data(as_text=True)
        picks = re.findall(r'name="pick" value="([^"]+)"', html)
        assert len(picks) == 2  # the expert's capacity allows one of their three capabilities, plus the other's
        assert 'data-status="capacity_used"' in html
        # nothing is proposed before the coordinator confirms, and the confirm button is at the top as well
        assert "已提议" not in html and "拟提议" in html and 'id="assign-bar"' in html
        coord.post("/coordinate/assign", data={"pick": picks})
        assert db.session.scalar(select(db.func.count(Pairing.id)).where(Pairing.need_id == need.id)) == 2
        need2 = make.need(world["enterprise"], title="储能电池低温容量保持")
        made = ops.suggest_from_engine(need2, k=4)
        assert all(p.state == "suggested" and p.match_score is not None and p.match_evidence for p in made)
        assert {p.capability_id for p in made} == {other.id}  # the first expert is at capacity
    finally:
        app.config.update(saved)
        app.extensions[ms.EXTENSION_KEY] = None
