"""Does feedback that demotes a strong match take it off the "strong" surfaces? (real model; slow)"""
from __future__ import annotations

import re

import pytest

from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.pairings import feedback
from matchmaker.pairings import operations as ops
from matchmaker.suggestions import queries
from tests.helpers import BRINE_CAP, BRINE_NEED, OFF_TOPIC_CAPS, login, unrelated_pool

pytestmark = pytest.mark.slow


def test_a_demoted_strong_match_becomes_possible_and_leaves_the_strong_surfaces(app, floor, make, world, client_as,
                                                                                 api_as):
    """After the capability is declined as not relevant for a near-identical need, is it — strong before — shown
    as "possible" for this need: no strong badge, "no good match yet" on the match page and in the API, and not
    pre-ticked in bulk assignment?"""
    need = make.need(world["enterprise"], **BRINE_NEED)
    twin = make.need(world["enterprise"], **{**BRINE_NEED, "title": "反渗透浓盐水COD深度处理"})
    for kw in OFF_TOPIC_CAPS:
        make.capability(world["expert"], **kw)
    unrelated_pool(make, world["expert"])
    cap = make.capability(world["expert"], **{**BRINE_CAP, "hub_city": "chongqing"})
    assert {s.listing.id: s.band for s in queries.capabilities_for_need(need)}[cap.id] == "strong"

    pairing = ops.propose_pairing(twin, cap, by=make.user(Role.COORDINATOR))
    ops.respond(pairing, world["enterprise"], "need", "declined", reason="not_relevant")
    db.session.commit()

    [s] = [s for s in queries.capabilities_for_need(need) if s.listing.id == cap.id]
    assert s.band == "possible" and s.match.components["feedback"] < 0
    assert feedback.NOTE_DEMOTED in s.match.feedback_notes
    html = client_as("enterprise").get(f"/needs/{need.id}/matches?lang=en").get_data(as_text=True)
    assert "No good match yet." in html and 'data-band="strong"' not in html
    body = api_as("enterprise").get(f"/api/v1/needs/{need.id}/matches").json
    assert body["state"] == "no_strong_match"
    assert {i["capability"]["id"]: i["band"] for i in body["items"]}.get(cap.id) == "possible"
    assign = login(app.test_client(), world["coordinator"]).get("/coordinate/assign?run=1&hub_city=chongqing")
    ticked = re.findall(r'name="pick" value="(\d+):(\d+):[^"]+" checked', assign.get_data(as_text=True))
    assert (str(need.id), str(cap.id)) not in ticked
