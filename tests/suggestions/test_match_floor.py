"""Does every surface honour the confidence floor, and is "no good match yet" a state the pages show? (real
embedding model and index: a handful of listings)"""
from __future__ import annotations

import re

import pytest

from matchmaker import matching_service as ms
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings.models import Capability, Need
from matchmaker.suggestions import alerts, queries
from tests.helpers import BRINE_CAP, BRINE_NEED, OFF_TOPIC_CAPS, notes_of, unrelated_pool

pytestmark = pytest.mark.slow

def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'match-item" data-id="(\d+)"', html)]


@pytest.fixture
def brine(make, world):
    """A brine-wastewater need among capabilities that have nothing to do with it."""
    need = make.need(world["enterprise"], **BRINE_NEED)
    others = [make.capability(world["expert"], **kw) for kw in OFF_TOPIC_CAPS]
    return {"need": need, "others": others, "fillers": unrelated_pool(make, world["expert"])}


def test_weak_results_are_never_suggested(floor, brine):
    """Of what the engine ranks for a need, are the results below the floor left out of the suggestions and
    of the browse pages' related results?"""
    need, ids = brine["need"], [c.id for c in brine["others"] + brine["fillers"]]
    raw = ms.get_engine().search("capability", [need.matching_text()], k=10, evidence=False)
    weak = {m.doc_id for m in raw if m.band == "weak"}
    assert weak  # unrelated capabilities: the engine still ranks them, below the floor
    assert not weak & {s.listing.id for s in queries.capabilities_for_need(need, k=10)}
    raw = ms.get_engine().search("capability", ["高盐废水COD"], k=10, allowed_ids=ids, evidence=False)
    weak = {m.doc_id for m in raw if m.band == "weak"}
    assert weak and not weak & {c.id for c in queries.related_listings(Capability, "高盐废水COD", ids)}


def test_no_good_match_yet_with_next_steps(floor, brine, client_as, api_as):
    """With nothing strong, do the match page and the need page's preview say "no good match yet" and offer
    the firm the coordinators, a challenge and the notice, and does the API say so?"""
    need = brine["need"]
    firm = client_as("enterprise")
    for url in (f"/needs/{need.id}/matches?lang=en", f"/needs/{need.id}/matches?fragment=1&lang=en"):
        html = firm.get(url).get_data(as_text=True)
        assert "No good match yet." in html
        assert f'action="/needs/{need.id}/ask-coordinators"' in html
        assert f"/challenges/new/{need.id}" in html
        assert 'id="no-match-watch"' in html
        assert 'data-band="weak"' not in html
    other = client_as("other_enterprise").get(f"/needs/{need.id}/matches?lang=en").get_data(as_text=True)
    assert "No good match yet." in other and "ask-coordinators" not in other  # not theirs to ask
    body = api_as("enterprise").get(f"/api/v1/needs/{need.id}/matches").json
    assert body["state"] == "no_strong_match"
    assert all(item["band"] == "possible" for item in body["items"])


def test_a_strong_match_is_shown_as_one(floor, brine, make, world, client_as, api_as):
    """Does a need with a strong match show it first, badged, without "no good match yet", and does the API
    give its confidence and band?"""
    need, cap = brine["need"], make.capability(world["expert"], **BRINE_CAP)
    html = client_as("enterprise").get(f"/needs/{need.id}/matches?lang=en").get_data(as_text=True)
    assert _ids(html)[0] == cap.id
    assert "No good match yet." not in html and 'data-band="strong"' in html
    body = api_as("enterprise").get(f"/api/v1/needs/{need.id}/matches").json
    assert body["state"] == "strong_match"
    assert body["items"][0]["capability"]["id"] == cap.id and body["items"][0]["band"] == "strong"
    assert 0.85 <= body["items"][0]["confidence"] <= 1


def test_a_first_strong_match_is_told_once(floor, brine, make, world):
    """When a capability that strongly matches a need without a strong match is published, are the firm and
    the hub city's coordinators told, once, and not a coordinator of another city?"""
    need = brine["need"]
    here = make.user(Role.COORDINATOR, hub_city=need.hub_city)
    elsewhere = make.user(Role.COORDINATOR, hub_city="qingdao")
    assert not queries.has_strong(queries.capabilities_for_need(need))  # and the index holds the pool
    cap = make.capability(world["expert"], **BRINE_CAP)  # published: its index job runs inline
    told = [n.kind for n in notes_of(world["enterprise"])], [n.kind for n in notes_of(here)]
    assert told == (["need.strong_match"], ["need.strong_match"])
    assert notes_of(elsewhere) == []
    assert db.session.get(Need, need.id).strong_match_notified_at is not None
    assert alerts.notify_first_strong_matches(keys={("capability", cap.id)}) == []  # the job again: not twice
    assert [n.kind for n in notes_of(world["enterprise"])] == ["need.strong_match"]


def test_a_need_that_had_a_strong_match_is_not_told(floor, brine, make, world):
    """Is a need that already had a strong match left alone when another one is published?"""
    need = brine["need"]
    make.capability(world["expert"], **BRINE_CAP)
    db.session.execute(db.update(Need).where(Need.id == need.id).values(strong_match_notified_at=None))
    second = make.capability(world["expert"], **{**BRINE_CAP, "title": "浓盐水COD催化臭氧氧化降解"})
    assert alerts.notify_first_strong_matches(keys={("capability", second.id)}) == []
    assert [n.kind for n in notes_of(world["enterprise"])] == ["need.strong_match"]  # the first one's only
