"""Does bulk assignment honour the confidence floor: no weak candidate, no padding to the slots, no weak
cross-region candidate brought in by the region quota, only strong ones pre-ticked? (real model; slow)"""
from __future__ import annotations

import re

import pytest

from matchmaker.pairings import operations as ops
from tests.helpers import BRINE_CAP, BRINE_NEED, login, unrelated_pool

pytestmark = pytest.mark.slow


@pytest.fixture
def pool(floor, make, world):
    """A Chongqing brine-wastewater need, the capability that solves it in Chongqing, and unrelated
    capabilities from Chengdu (cross-region for the need)."""
    need = make.need(world["enterprise"], **BRINE_NEED)
    fillers = unrelated_pool(make, world["expert"])
    right = make.capability(world["expert"], **{**BRINE_CAP, "hub_city": "chongqing"})
    return {"need": need, "right": right, "fillers": fillers}


def test_assignment_proposes_only_what_clears_the_floor(app, pool, world):
    """With three slots and the region quota on, is the need given its strong match, ticked, and none of the
    unrelated cross-region capabilities, although slots and quota are left unfilled?"""
    coordinator = login(app.test_client(), world["coordinator"])
    html = coordinator.get("/coordinate/assign?run=1&slots=3&quota=1&hub_city=chongqing").get_data(as_text=True)
    need, right = pool["need"], pool["right"]
    assert re.findall(r'name="pick" value="(\d+):(\d+):[^"]+" checked', html) == [(str(need.id), str(right.id))]
    offered = {int(c) for c in re.findall(r'name="pick" value="\d+:(\d+):', html)}
    assert not offered & {c.id for c in pool["fillers"]}
    assert 'data-band="weak"' not in html


def test_engine_suggestions_skip_weak_results(pool):
    """Does suggest_from_engine create a pairing for the strong match only, never one of the unrelated ones?"""
    made = ops.suggest_from_engine(pool["need"], k=5)
    assert [p.capability_id for p in made] == [pool["right"].id]
